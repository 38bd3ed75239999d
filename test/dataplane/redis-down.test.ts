import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Cache } from "../../lib/cache/cache.ts";
import { openCache } from "../../lib/cache/index.ts";
import { metrics } from "../../lib/telemetry/metrics.ts";
import { hostPort, redisSkipReason, TEST_REDIS_URL, waitForCache } from "../support/backends.ts";
import { openTestDb } from "../support/harness.ts";
import { ownRedis, redisServerSkipReason } from "./support/redis-server.ts";
import { type DataplaneService, eventually, startService } from "./support/service.ts";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.ts";

const noServer = redisServerSkipReason();
const noRedis = await redisSkipReason();
for (const reason of [noServer, noRedis])
  if (reason) process.stderr.write(`test/dataplane/redis-down: ${reason}\n`);

const storeErrors = async () =>
  (await metrics.rateLimited.get()).values.find((v) => v.labels.scope === "merchant_store_error")?.value ?? 0;
const cacheCount = async (result: string) =>
  (await metrics.cacheRequests.get()).values.find((v) => v.labels.result === result)?.value ?? 0;

async function newPayment(t: DataplaneService) {
  const order = await t.call("POST", "/v1/orders", { body: { amount: 2500, currency: "USD" } });
  const payment = await t.call("POST", "/v1/payments", {
    body: { order_id: order.body.id, payment_method: "pm_card_visa" },
  });
  expect(payment.status).toBe(201);
  return payment.body;
}

const cached = (t: DataplaneService, id: string) =>
  t.service.cache.get(`status:acct_dataplane:payment:${id}`);

describe.skipIf(noServer)("when Redis dies mid-run", () => {
  let redis: Awaited<ReturnType<typeof ownRedis>>;
  let t: DataplaneService;
  beforeAll(async () => {
    // A redis-server of this test's own: killing it disturbs no other suite.
    redis = await ownRedis();
    await redis.start();
    t = await startService({
      db: await openTestDb(),
      env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `down-${randomBytes(4).toString("hex")}:` },
    });
    await waitForCache(t.service.cache);
  });
  afterAll(async () => {
    await t?.close();
    await redis?.kill();
  });

  it("answers every endpoint from PostgreSQL, fails rate limits open, reports degraded, and recovers", async () => {
    const payment = await newPayment(t);
    await t.call("GET", `/v1/payments/${payment.id}`);
    await expect.poll(() => cached(t, payment.id)).toBeDefined();

    await redis.kill();
    const errorsBefore = await storeErrors();

    // Reads bypass the cache; writes and their idempotency work from PostgreSQL alone.
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("requires_confirmation");
    const confirmed = await t.call("POST", `/v1/payments/${payment.id}/confirm`, {
      body: {},
      idempotencyKey: `confirm-${payment.id}`,
    });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body.status).toBe("succeeded");
    const replayed = await t.call("POST", `/v1/payments/${payment.id}/confirm`, {
      body: {},
      idempotencyKey: `confirm-${payment.id}`,
    });
    expect(replayed.headers.get("idempotent-replayed")).toBe("true");
    expect(replayed.body).toEqual(confirmed.body);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("succeeded");
    expect((await t.call("GET", `/v1/orders/${payment.order_id}`)).body.status).toBe("paid");

    const race = await Promise.all(
      Array.from({ length: 5 }, () =>
        t.call("POST", "/v1/orders", { body: { amount: 777, currency: "USD" }, idempotencyKey: "race-down" }),
      ),
    );
    expect(new Set(race.filter((r) => r.status === 201).map((r) => r.body.id)).size).toBe(1);
    expect(race.every((r) => r.status === 201 || r.body.code === "idempotency_key_in_use")).toBe(true);

    // Rate limiting failed open: counted, and logged once rather than per request.
    expect(await storeErrors()).toBeGreaterThan(errorsBefore);
    const warnings = t.logs.filter((l) => l.msg?.startsWith("rate limit store unavailable"));
    expect(warnings.length).toBe(1);

    const ready = await t.call("GET", "/ready");
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: "degraded", checks: { database: "ok", cache: "degraded" } });

    await redis.start();
    expect(await eventually(async () => (await t.call("GET", "/ready")).body.checks.cache === "ok")).toBe(
      true,
    );
    // Redis is used again, without a restart: reads fill it (once the replayed invalidation marker has expired)
    // and the next read is a hit.
    const filled = await eventually(async () => {
      await t.call("GET", `/v1/payments/${payment.id}`);
      return (await cached(t, payment.id))?.includes('"succeeded"') ?? false;
    });
    expect(filled).toBe(true);
    const hits = await cacheCount("hit");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("succeeded");
    expect(await cacheCount("hit")).toBe(hits + 1);
  });
});

describe.skipIf(noRedis)("when the network to Redis is cut and Redis keeps its data", () => {
  let proxy: TcpProxy;
  let t: DataplaneService;
  beforeAll(async () => {
    proxy = await startTcpProxy(hostPort(TEST_REDIS_URL));
    t = await startService({
      db: await openTestDb(),
      env: {
        REDIS_URL: proxy.via(TEST_REDIS_URL),
        REDIS_KEY_PREFIX: `cut-${randomBytes(4).toString("hex")}:`,
      },
    });
    await waitForCache(t.service.cache);
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
  });

  it("replays the invalidations it missed before reading Redis again: never a stale status", async () => {
    const payment = await newPayment(t);
    await t.call("GET", `/v1/payments/${payment.id}`);
    await expect.poll(() => cached(t, payment.id)).toContain("requires_confirmation");

    await proxy.cut();
    const canceled = await t.call("POST", `/v1/payments/${payment.id}/cancel`, { body: {} });
    expect(canceled.body.status).toBe("canceled");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("canceled");

    // Redis still holds the entry written before the cut, with most of its TTL left.
    await proxy.restore();
    expect(await eventually(async () => (await t.call("GET", "/ready")).body.checks.cache === "ok")).toBe(
      true,
    );
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("canceled");
    expect(await cached(t, payment.id)).not.toContain("requires_confirmation");
  });

  /**
   * Two caches on one key prefix, one reaching Redis directly (the observer, another instance) and one through the
   * proxy, whose write of "status" over the observer's "old" fails while the proxy is cut; then `after`.
   */
  async function withMissedWrite(ttlMs: number, after: (observer: Cache, cutOff: Cache) => Promise<void>) {
    const keyPrefix = `cut-${randomBytes(4).toString("hex")}:`;
    const observer = await openCache({ redisUrl: TEST_REDIS_URL, redisKeyPrefix: keyPrefix });
    const cutOff = await openCache({ redisUrl: proxy.via(TEST_REDIS_URL), redisKeyPrefix: keyPrefix });
    try {
      await Promise.all([waitForCache(observer), waitForCache(cutOff)]);
      await observer.set("status", "old", 60_000);
      await proxy.cut();
      await expect(cutOff.set("status", "marker", ttlMs)).rejects.toThrow();
      await after(observer, cutOff);
    } finally {
      await observer.close();
      await cutOff.close();
    }
  }

  it("replays an invalidation missed for longer than its own TTL, on an instance that wrote nothing else", async () => {
    // The 2 s marker an invalidation writes; the entry it replaces lives 60 s.
    await withMissedWrite(2_000, async (observer, fresh) => {
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      await proxy.restore();
      await waitForCache(fresh);
      await expect.poll(() => observer.get("status"), { timeout: 5_000 }).not.toBe("old");
    });
  });

  it("sends the invalidations it could not send before it closes, once the connection is back", async () => {
    await withMissedWrite(60_000, async (observer, closing) => {
      await proxy.restore();
      // Shut down before any read made it replay: the write must not die with the process.
      await closing.close();
      expect(await observer.get("status")).toBe("marker");
    });
  });

  it("keeps answering, each request bounded, when Redis accepts connections but stops answering", async () => {
    const payment = await newPayment(t);
    proxy.blackhole();
    for (let i = 0; i < 4; i++) {
      const started = Date.now();
      const res = await t.call("GET", `/v1/payments/${payment.id}`);
      // Not a speed target: a silent Redis must cost a request its command timeouts (500 ms each), no more.
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(res.body.status).toBe("requires_confirmation");
    }
    const write = await t.call("POST", "/v1/orders", {
      body: { amount: 10, currency: "USD" },
      idempotencyKey: "silent",
    });
    expect(write.status).toBe(201);
    expect((await t.call("GET", "/ready")).body.checks.cache).toBe("degraded");
    await proxy.restore();
    expect(await eventually(async () => (await t.call("GET", "/ready")).body.checks.cache === "ok")).toBe(
      true,
    );
  });
});
