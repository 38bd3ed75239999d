import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Cache } from "../../lib/cache/cache.ts";
import { openCache } from "../../lib/cache/index.ts";
import { type RedisCache, RedisNotLoadedError } from "../../lib/cache/redis.ts";
import type { Db } from "../../lib/db/db.ts";
import { requestFingerprint } from "../../lib/http/idempotency.ts";
import { createIdempotencyLock } from "../../lib/http/idempotency-lock.ts";
import { createRateLimiter, limitersFor } from "../../lib/http/rate-limit.ts";
import { metrics } from "../../lib/telemetry/metrics.ts";
import { redisSkipReason, TEST_REDIS_URL, waitForCache } from "../support/backends.ts";
import { openTestDb } from "../support/harness.ts";
import { type DataplaneService, startService } from "./support/service.ts";

const skip = await redisSkipReason();
if (skip) process.stderr.write(`test/dataplane/redis: ${skip}\n`);

const prefix = () => `test:${randomBytes(6).toString("hex")}:`;

async function redisCacheFor(keyPrefix = prefix()): Promise<Cache> {
  const cache = await openCache({ redisUrl: TEST_REDIS_URL, redisKeyPrefix: keyPrefix });
  await waitForCache(cache);
  return cache;
}

const cacheCount = async (result: string) =>
  (await metrics.cacheRequests.get()).values.find((v) => v.labels.result === result)?.value ?? 0;

describe.skipIf(skip)("the Redis cache", () => {
  const caches: Cache[] = [];
  afterAll(async () => {
    for (const cache of caches) await cache.close();
  });
  const open = async (keyPrefix?: string) => {
    const cache = await redisCacheFor(keyPrefix);
    caches.push(cache);
    return cache;
  };

  it("gets, sets with a TTL in milliseconds, sets only when absent, deletes", async () => {
    const cache = await open();
    expect(cache.kind).toBe("redis");
    expect(await cache.get("k")).toBeUndefined();
    await cache.set("k", "v1", 60_000);
    expect(await cache.get("k")).toBe("v1");
    expect(await cache.setIfAbsent("k", "v2", 60_000)).toBe(false);
    expect(await cache.get("k")).toBe("v1");
    await cache.del("k");
    expect(await cache.setIfAbsent("k", "v3", 60_000)).toBe(true);
    expect(await cache.get("k")).toBe("v3");
    await cache.set("short", "x", 50);
    await expect.poll(() => cache.get("short"), { timeout: 2_000 }).toBeUndefined();
    await cache.ping();
  });

  it("before its client loads: reads miss, locks fail, and a write loads it and lands before it returns", async () => {
    const keyPrefix = prefix();
    const seen = await open(keyPrefix);
    await seen.set("stale", "old", 60_000);
    await seen.set("gone", "old", 60_000);
    const never = new Promise<void>(() => {});
    const fresh = async () => {
      const cache = await openCache(
        { redisUrl: TEST_REDIS_URL, redisKeyPrefix: keyPrefix },
        undefined,
        never,
      );
      caches.push(cache);
      return cache;
    };
    const cache = await fresh();
    expect(await cache.get("stale")).toBeUndefined();
    await expect(cache.setIfAbsent("lock", "x", 60_000)).rejects.toBeInstanceOf(RedisNotLoadedError);
    await expect(cache.ping()).rejects.toBeInstanceOf(RedisNotLoadedError);
    // An invalidation is in Redis by the time it returns: another instance never reads the state it replaced.
    await cache.set("stale", "invalidated", 2_000);
    expect(await seen.get("stale")).toBe("invalidated");
    expect(await cache.get("stale")).toBe("invalidated");
    const other = await fresh();
    await other.del("gone");
    expect(await seen.get("gone")).toBeUndefined();
  });

  it("before its client loads, the rate limiter counts on this instance, then on Redis", async () => {
    const keyPrefix = prefix();
    let release = () => {};
    const later = new Promise<void>((resolve) => {
      release = resolve;
    });
    const cache = await openCache({ redisUrl: TEST_REDIS_URL, redisKeyPrefix: keyPrefix }, undefined, later);
    const other = await open(keyPrefix);
    caches.push(cache);
    const consume = createRateLimiter({ rps: 2, burst: 2 }, limitersFor(cache));
    // Two a second, and one more from the burst allowance.
    for (let i = 0; i < 3; i++) await consume("merchant", "acct_a");
    await expect(consume("merchant", "acct_a")).rejects.toMatchObject({ code: "rate_limited" });
    // Counted in memory: nothing reached Redis.
    expect(await other.get("rl:merchant:acct_a")).toBeUndefined();
    release();
    await waitForCache(cache);
    await (cache as RedisCache).connected;
    await consume("merchant", "acct_b");
    expect(await other.get("rl:merchant:acct_b")).toBe("1");
  });

  it("sends nothing before its first connection, and its rate limiter's script is defined by then", async () => {
    const keyPrefix = prefix();
    let release = () => {};
    const later = new Promise<void>((resolve) => {
      release = resolve;
    });
    const cache = (await openCache(
      { redisUrl: TEST_REDIS_URL, redisKeyPrefix: keyPrefix },
      undefined,
      later,
    )) as RedisCache;
    caches.push(cache);
    createRateLimiter({ rps: 10, burst: 10 }, limitersFor(cache));
    release();
    // The client exists and is connecting: a lock is refused here, not queued on an ioredis auto-pipeline.
    const client = await cache.client;
    await expect(cache.setIfAbsent("lock", "x", 60_000)).rejects.toBeInstanceOf(RedisNotLoadedError);
    // A script defined after commands were queued on an auto-pipeline is missing from it: the call then leaves an
    // answer short and ioredis throws from its own callback, which ends the process (seen under load at the switch).
    await new Promise((resolve) => client.once("connect", resolve));
    expect(typeof (client as unknown as Record<string, unknown>).rlflxIncr).toBe("function");
    await cache.connected;
    expect(await cache.setIfAbsent("lock", "x", 60_000)).toBe(true);
  });

  it("keeps services with different key prefixes apart", async () => {
    const a = await open();
    const b = await open();
    await a.set("shared-name", "a", 60_000);
    expect(await b.get("shared-name")).toBeUndefined();
    expect(await b.setIfAbsent("shared-name", "b", 60_000)).toBe(true);
    expect(await a.get("shared-name")).toBe("a");
  });
});

describe.skipIf(skip)("the service on Redis", () => {
  let db: Db;
  let queries: string[];
  let t: DataplaneService;
  const keyPrefix = prefix();
  beforeAll(async () => {
    db = await openTestDb();
    queries = [];
    // Every statement the service sends, to prove which requests never reach PostgreSQL.
    const counted: Db = {
      ...db,
      query: (sql, params) => {
        queries.push(sql);
        return db.query(sql, params);
      },
    };
    t = await startService({ db: counted, cache: await redisCacheFor(keyPrefix) });
  });
  afterAll(() => t?.close());

  async function orderWithPayment() {
    const order = await t.call("POST", "/v1/orders", { body: { amount: 1500, currency: "EUR" } });
    const payment = await t.call("POST", "/v1/payments", {
      body: { order_id: order.body.id, payment_method: "pm_card_visa" },
    });
    expect(payment.status).toBe(201);
    return payment.body;
  }

  it("serves a payment's status from Redis and never a state older than a committed change", async () => {
    const payment = await orderWithPayment();
    const hits = await cacheCount("hit");
    const first = await t.call("GET", `/v1/payments/${payment.id}`);
    expect(first.body.status).toBe("requires_confirmation");
    // The read-through write is not awaited by the request; wait until Redis has it.
    await expect
      .poll(
        async () => (await t.service.cache.get(`status:acct_dataplane:payment:${payment.id}`)) !== undefined,
      )
      .toBe(true);
    const before = queries.length;
    const second = await t.call("GET", `/v1/payments/${payment.id}`);
    expect(second.body).toEqual(first.body);
    expect(await cacheCount("hit")).toBe(hits + 1);
    expect(queries.slice(before).filter((sql) => /FROM payments/.test(sql))).toEqual([]);

    const canceled = await t.call("POST", `/v1/payments/${payment.id}/cancel`, { body: {} });
    expect(canceled.body.status).toBe("canceled");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("canceled");
  });

  it("serves a change made through another instance to the next read of this one", async () => {
    // The same database (its close left to this suite), the same Redis keys: another instance of the service.
    const shared: Db = { ...db, close: async () => {} };
    const other = await startService({ db: shared, cache: await redisCacheFor(keyPrefix) });
    try {
      const payment = await orderWithPayment();
      const path = `/v1/payments/${payment.id}`;
      expect((await t.call("GET", path)).body.status).toBe("requires_confirmation");
      // Cached in Redis by the read (its write is not awaited by the request).
      await expect
        .poll(
          async () =>
            (await t.service.cache.get(`status:acct_dataplane:payment:${payment.id}`)) !== undefined,
        )
        .toBe(true);
      const canceled = await other.call("POST", `${path}/cancel`, { body: {} });
      expect(canceled.body.status).toBe("canceled");
      expect((await t.call("GET", path)).body.status).toBe("canceled");
    } finally {
      await other.close();
    }
  });

  it("answers a duplicate of a request in flight with 409 from Redis, without touching PostgreSQL", async () => {
    const body = { amount: 700, currency: "USD" };
    const key = `lock-${randomBytes(4).toString("hex")}`;
    const fingerprint = requestFingerprint("POST", "/v1/orders", JSON.stringify(body));
    // Another instance holds the key: the request is in flight there.
    const release = await createIdempotencyLock(t.service.cache).acquire("acct_dataplane", key, fingerprint);
    const before = queries.length;
    const duplicate = await t.call("POST", "/v1/orders", { body, idempotencyKey: key });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.code).toBe("idempotency_key_in_use");
    expect(duplicate.headers.get("retry-after")).toBe("1");
    expect(queries.slice(before)).toEqual([]);

    await release();
    const first = await t.call("POST", "/v1/orders", { body, idempotencyKey: key });
    expect(first.status).toBe(201);
    const replay = await t.call("POST", "/v1/orders", { body, idempotencyKey: key });
    expect(replay.status).toBe(201);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body.id).toBe(first.body.id);
  });

  it("lets a different request with a locked key reach PostgreSQL, which answers 422", async () => {
    const key = `lock-${randomBytes(4).toString("hex")}`;
    const first = await t.call("POST", "/v1/orders", {
      body: { amount: 1, currency: "USD" },
      idempotencyKey: key,
    });
    expect(first.status).toBe(201);
    const fingerprint = requestFingerprint(
      "POST",
      "/v1/orders",
      JSON.stringify({ amount: 1, currency: "USD" }),
    );
    const release = await createIdempotencyLock(t.service.cache).acquire("acct_dataplane", key, fingerprint);
    const other = await t.call("POST", "/v1/orders", {
      body: { amount: 2, currency: "USD" },
      idempotencyKey: key,
    });
    expect(other.status).toBe(422);
    expect(other.body.code).toBe("idempotency_key_reused");
    await release();
  });

  it("creates one order for concurrent duplicates, the others answered 409 or replayed", async () => {
    const key = `race-${randomBytes(4).toString("hex")}`;
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        t.call("POST", "/v1/orders", { body: { amount: 4242, currency: "GBP" }, idempotencyKey: key }),
      ),
    );
    const created = answers.filter((a) => a.status === 201);
    expect(answers.every((a) => a.status === 201 || a.body.code === "idempotency_key_in_use")).toBe(true);
    expect(new Set(created.map((a) => a.body.id)).size).toBe(1);
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM orders WHERE merchant_id = 'acct_dataplane' AND amount = 4242",
    );
    expect(rows[0]?.n).toBe(1);
  });
});

describe.skipIf(skip)("rate limits in Redis", () => {
  const services: DataplaneService[] = [];
  afterAll(async () => {
    for (const s of services) await s.close();
  });

  it("are shared by every instance", async () => {
    const keyPrefix = prefix();
    // 1 request a second plus a burst allowance of 1: two requests pass per second, whichever instance serves.
    const env = { RATE_LIMIT_RPS: "1", RATE_LIMIT_BURST: "2" };
    for (let i = 0; i < 2; i++) {
      services.push(
        await startService({ db: await openTestDb(), env, cache: await redisCacheFor(keyPrefix) }),
      );
    }
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await services[i % 2]?.call("GET", "/v1/orders?limit=1", { merchant: "acct_limited" });
      statuses.push(res?.status ?? 0);
      if (res?.status === 429) expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    // Separate in-memory limits would pass 2 per instance (4 of 6); a second boundary crossed adds at most one.
    const passed = statuses.filter((s) => s === 200).length;
    expect(passed).toBeGreaterThanOrEqual(2);
    expect(passed).toBeLessThanOrEqual(3);
    expect(statuses.filter((s) => s === 429).length).toBe(6 - passed);
  });
});
