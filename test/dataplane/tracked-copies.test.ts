import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { redisOptions } from "../../lib/cache/redis.ts";
import { TrackedCopies } from "../../lib/cache/tracked-copies.ts";
import { redisSkipReason, TEST_REDIS_URL } from "../support/backends.ts";

const skip = await redisSkipReason();
if (skip) process.stderr.write(`test/dataplane/tracked-copies: ${skip}\n`);

describe.skipIf(skip)("copies of Redis values kept current by Redis (client tracking)", () => {
  const clients: Redis[] = [];
  const tracked: TrackedCopies[] = [];
  afterAll(async () => {
    for (const copies of tracked) await copies.close();
    for (const client of clients) client.disconnect();
  });

  const connect = async (url = TEST_REDIS_URL, keyPrefix?: string) => {
    const client = new Redis(url, redisOptions({ keyPrefix }));
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
    // Counts what the reader sends to Redis: a read from a copy sends nothing.
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
    return { copies, writer, keyPrefix, sent: () => sent };
  };
  const tracking = (copies: TrackedCopies) =>
    expect.poll(() => copies.tracking, { timeout: 5_000 }).toBe(true);

  it("answers repeated reads from its copy, and reads again once another client changes the key", async () => {
    const { copies, writer, sent } = await setUp();
    await tracking(copies);
    await writer.set("status:a", "v1", "PX", 60_000);
    expect(await copies.get("status:a")).toBe("v1");
    const afterFirst = sent();
    expect(await copies.get("status:a")).toBe("v1");
    expect(await copies.get("status:a")).toBe("v1");
    expect(sent()).toBe(afterFirst);
    expect(copies.size).toBe(1);

    await writer.set("status:a", "v2", "PX", 60_000);
    await copies.settled();
    expect(copies.size).toBe(0);
    expect(await copies.get("status:a")).toBe("v2");
    expect(sent()).toBe(afterFirst + 1);

    await writer.del("status:a");
    await copies.settled();
    expect(await copies.get("status:a")).toBeUndefined();
  });

  it("keeps no copy of a missing key or of one without a TTL, and drops a copy when its key expires", async () => {
    const { copies, writer } = await setUp();
    await tracking(copies);
    expect(await copies.get("absent")).toBeUndefined();
    await writer.set("forever", "x");
    expect(await copies.get("forever")).toBe("x");
    expect(copies.size).toBe(0);
    await writer.set("short", "y", "PX", 100);
    expect(await copies.get("short")).toBe("y");
    expect(copies.size).toBe(1);
    await expect.poll(() => copies.get("short"), { timeout: 3_000 }).toBeUndefined();
  });

  it("keeps nothing read while an invalidation of the key arrived: the reply may predate the change", async () => {
    const { copies, writer, keyPrefix } = await setUp();
    await tracking(copies);
    await writer.set("raced", "old", "PX", 60_000);
    const reading = copies.get("raced");
    // The invalidation travels on the listening connection and may overtake the read's reply on the other one.
    const listener = (copies as unknown as { listener: Redis }).listener;
    listener.emit("messageBuffer", Buffer.from("__redis__:invalidate"), [Buffer.from(`${keyPrefix}raced`)]);
    expect(await reading).toBe("old");
    expect(copies.size).toBe(0);
    // A flushed database (a null list) drops every copy.
    expect(await copies.get("raced")).toBe("old");
    expect(copies.size).toBe(1);
    listener.emit("messageBuffer", Buffer.from("__redis__:invalidate"), null);
    expect(copies.size).toBe(0);
  });

  for (const which of ["listening", "reading"] as const) {
    it(`drops every copy and reads Redis while its ${which} connection is down, and tracks again once it is back`, async () => {
      const { copies, writer } = await setUp();
      await tracking(copies);
      await writer.set("k", "v1", "PX", 60_000);
      expect(await copies.get("k")).toBe("v1");
      const internals = copies as unknown as { listenerId: number; main: Redis };
      const id = which === "listening" ? internals.listenerId : Number(await internals.main.client("ID"));
      await writer.client("KILL", "ID", String(id));
      await expect.poll(() => copies.size).toBe(0);
      // A change made while tracking is down is never announced to this reader: it must not serve the old copy.
      await writer.set("k", "v2", "PX", 60_000);
      // A read fails while the reading connection comes back (the cache's callers then read PostgreSQL).
      const seen = new Set<string | undefined>();
      const read = () => copies.get("k").catch(() => "failed");
      await expect
        .poll(async () => {
          const value = await read();
          seen.add(value);
          return value;
        })
        .toBe("v2");
      expect(seen.has("v1")).toBe(false);
      await tracking(copies);
      expect(await copies.get("k")).toBe("v2");
      expect(copies.size).toBe(1);
      await writer.set("k", "v3", "PX", 60_000);
      await copies.settled();
      expect(await copies.get("k")).toBe("v3");
    });
  }

  it("reads Redis each time where client tracking is refused", async () => {
    const user = `notrack_${randomBytes(4).toString("hex")}`;
    const admin = await connect();
    await admin.acl("SETUSER", user, "on", "nopass", "~*", "&*", "+@all", "-client|tracking");
    try {
      const url = new URL(TEST_REDIS_URL);
      url.username = user;
      const { copies, writer } = await setUp(url.toString());
      await writer.set("k", "v1", "PX", 60_000);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(copies.tracking).toBe(false);
      expect(await copies.get("k")).toBe("v1");
      await writer.set("k", "v2", "PX", 60_000);
      expect(await copies.get("k")).toBe("v2");
      expect(copies.size).toBe(0);
    } finally {
      await admin.acl("DELUSER", user);
    }
  });
});
