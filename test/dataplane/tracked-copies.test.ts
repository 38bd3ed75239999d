import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { redisOptions } from "../../lib/cache/redis.ts";
import { TrackedCopies } from "../../lib/cache/tracked-copies.ts";
import { redisSkipReason, TEST_REDIS_URL } from "../support/backends.ts";

const skip = await redisSkipReason();
if (skip) process.stderr.write(`test/dataplane/tracked-copies: ${skip}\n`);

type Internals = { listener: Redis; listenerId: number; main: Redis };

describe.skipIf(skip)("copies of Redis values kept current by Redis (client tracking)", () => {
  const clients: Redis[] = [];
  const tracked: TrackedCopies[] = [];
  afterAll(async () => {
    for (const copies of tracked) await copies.close();
    for (const client of clients) client.disconnect();
  });

  const connect = async (url = TEST_REDIS_URL, keyPrefix?: string) => {
    const client = new Redis(url, redisOptions({ keyPrefix }));
    // A user deleted at the end of a test leaves clients that fail to reconnect: not this suite's concern.
    client.on("error", () => {});
    clients.push(client);
    await client.connect();
    return client;
  };
  /** A reader with copies, and a client of another instance writing the same keys. */
  const setUp = async (url = TEST_REDIS_URL) => {
    const keyPrefix = `test:${randomBytes(6).toString("hex")}:`;
    const main = await connect(url, keyPrefix);
    const copies = new TrackedCopies(main, keyPrefix);
    tracked.push(copies);
    const writer = await connect(url, keyPrefix);
    // Counts what the reader sends on its main connection: a read from a copy sends nothing there.
    let sent = 0;
    const get = main.get.bind(main);
    const pipeline = main.pipeline.bind(main);
    main.get = ((...args: Parameters<typeof get>) => {
      sent++;
      return get(...args);
    }) as typeof main.get;
    main.pipeline = ((...args: Parameters<typeof pipeline>) => {
      sent++;
      return pipeline(...args);
    }) as typeof main.pipeline;
    // The listening connection opens at the first read.
    await copies.get("nothing");
    await expect.poll(() => copies.tracking, { timeout: 5_000 }).toBe(true);
    return { copies, writer, keyPrefix, sent: () => sent, internals: copies as unknown as Internals };
  };

  it("answers repeated reads from its copy, and reads again once another client changes the key", async () => {
    const { copies, writer, sent } = await setUp();
    await writer.set("status:a", "v1", "PX", 60_000);
    expect(await copies.get("status:a")).toBe("v1");
    const afterFirst = sent();
    expect(await copies.get("status:a")).toBe("v1");
    expect(await copies.get("status:a")).toBe("v1");
    expect(sent()).toBe(afterFirst);
    expect(copies.holds("status:a")).toBe(true);

    await writer.set("status:a", "v2", "PX", 60_000);
    expect(await copies.get("status:a")).toBe("v2");
    expect(sent()).toBe(afterFirst + 1);
    await writer.del("status:a");
    expect(await copies.get("status:a")).toBeUndefined();
  });

  it("never answers with a copy older than a change acknowledged before the read began", async () => {
    const { copies, writer } = await setUp();
    // The reader runs in this process: the writer's acknowledgement is handled before the invalidation that Redis
    // sent with it, on the other connection. Only the read's own PING on that connection orders the two.
    for (let i = 0; i < 200; i++) {
      await writer.set("hot", `v${i}`, "PX", 60_000);
      expect(await copies.get("hot")).toBe(`v${i}`);
      expect(await copies.get("hot")).toBe(`v${i}`);
    }
    expect(copies.holds("hot")).toBe(true);
  });

  it("keeps no copy of a missing key or of one without a TTL, and drops a copy when its key expires", async () => {
    const { copies, writer } = await setUp();
    expect(await copies.get("absent")).toBeUndefined();
    expect(copies.holds("absent")).toBe(false);
    await writer.set("forever", "x");
    expect(await copies.get("forever")).toBe("x");
    expect(copies.holds("forever")).toBe(false);
    await writer.set("short", "y", "PX", 100);
    expect(await copies.get("short")).toBe("y");
    expect(copies.holds("short")).toBe(true);
    await expect.poll(() => copies.get("short"), { timeout: 3_000 }).toBeUndefined();
  });

  it("keeps nothing read while an invalidation of the key arrived: the reply may predate the change", async () => {
    const { copies, writer, keyPrefix, internals } = await setUp();
    await writer.set("raced", "old", "PX", 60_000);
    const reading = copies.get("raced");
    // The invalidation travels on the listening connection and may overtake the read's reply on the other one.
    internals.listener.emit("messageBuffer", Buffer.from("__redis__:invalidate"), [
      Buffer.from(`${keyPrefix}raced`),
    ]);
    expect(await reading).toBe("old");
    expect(copies.holds("raced")).toBe(false);
    // A flushed database (a null list) drops every copy.
    expect(await copies.get("raced")).toBe("old");
    expect(copies.holds("raced")).toBe(true);
    internals.listener.emit("messageBuffer", Buffer.from("__redis__:invalidate"), null);
    expect(copies.holds("raced")).toBe(false);
  });

  for (const which of ["listening", "reading"] as const) {
    it(`never serves a copy while its ${which} connection is down, and copies again once it is back`, async () => {
      const { copies, writer, internals } = await setUp();
      await writer.set("k", "v1", "PX", 60_000);
      expect(await copies.get("k")).toBe("v1");
      expect(copies.holds("k")).toBe(true);
      const id = which === "listening" ? internals.listenerId : Number(await internals.main.client("ID"));
      await writer.client("KILL", "ID", String(id));
      // Changed at once: the reader may not have noticed the lost connection yet, and is never told of this change.
      await writer.set("k", "v2", "PX", 60_000);
      const seen = new Set<string | undefined>();
      // A read fails while the reading connection comes back (the cache's callers then read PostgreSQL).
      await expect
        .poll(async () => {
          const value = await copies.get("k").catch(() => "failed");
          seen.add(value);
          return value;
        })
        .toBe("v2");
      expect(seen.has("v1")).toBe(false);
      await expect.poll(() => copies.tracking, { timeout: 5_000 }).toBe(true);
      expect(await copies.get("k")).toBe("v2");
      expect(await copies.get("k")).toBe("v2");
      expect(copies.holds("k")).toBe(true);
      await writer.set("k", "v3", "PX", 60_000);
      expect(await copies.get("k")).toBe("v3");
    });
  }

  for (const refused of ["client|tracking", "client|caching"]) {
    it(`reads Redis each time where ${refused} is refused`, async () => {
      const user = `notrack_${randomBytes(4).toString("hex")}`;
      const admin = await connect();
      await admin.acl("SETUSER", user, "on", "nopass", "~*", "&*", "+@all", `-${refused}`);
      try {
        const url = new URL(TEST_REDIS_URL);
        url.username = user;
        const keyPrefix = `test:${randomBytes(6).toString("hex")}:`;
        const copies = new TrackedCopies(await connect(url.toString(), keyPrefix), keyPrefix);
        tracked.push(copies);
        const writer = await connect(TEST_REDIS_URL, keyPrefix);
        await writer.set("k", "v1", "PX", 60_000);
        for (let i = 0; i < 5; i++) {
          expect(await copies.get("k")).toBe("v1");
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        expect(copies.holds("k")).toBe(false);
        expect(copies.tracking).toBe(false);
        await writer.set("k", "v2", "PX", 60_000);
        expect(await copies.get("k")).toBe("v2");
      } finally {
        await admin.acl("DELUSER", user);
      }
    });
  }
});
