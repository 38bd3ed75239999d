import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Cache } from "../../lib/cache/cache.ts";
import { openCache } from "../../lib/cache/index.ts";
import { redisSkipReason, TEST_REDIS_URL, waitForCache } from "../support/backends.ts";
import { startTestService, type TestResponse, type TestService } from "../support/harness.ts";
import { serveApp } from "./support/servers.ts";

/**
 * RATE_LIMIT_RPS=20 with RATE_LIMIT_BURST=40, per merchant: a burst of 200 gets its 40 through (plus what the
 * per-second allowance refills while the burst lasts), then 429 with Retry-After and RateLimit-* headers; another
 * merchant is served all along. Unauthenticated requests are limited per client address, apart from merchants.
 * On the in-process limiter and on Redis, where two instances share one budget.
 */
const LIMITS = { RATE_LIMIT_RPS: "20", RATE_LIMIT_BURST: "40" };
const redisSkip = await redisSkipReason();

function checkLimited(answers: TestResponse[], elapsedMs: number) {
  const ok = answers.filter((a) => a.status === 200);
  const limited = answers.filter((a) => a.status === 429);
  expect(ok.length + limited.length).toBe(answers.length);
  // The burst, plus at most one second's allowance per second (or part of one) the burst took.
  expect(ok.length).toBeGreaterThanOrEqual(40);
  expect(ok.length).toBeLessThanOrEqual(40 + 20 * Math.ceil(elapsedMs / 1000));
  for (const a of limited) {
    expect(a.body.code).toBe("rate_limited");
    expect(a.headers.get("content-type")).toContain("application/problem+json");
    expect(Number(a.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(a.headers.get("ratelimit-limit")).toBe("20");
    expect(a.headers.get("ratelimit-remaining")).toBe("0");
    expect(Number(a.headers.get("ratelimit-reset"))).toBeGreaterThanOrEqual(0);
  }
  for (const a of ok) {
    expect(a.headers.get("ratelimit-limit")).toBe("20");
    expect(Number(a.headers.get("ratelimit-remaining"))).toBeGreaterThanOrEqual(0);
  }
  return ok.length;
}

/** Merchant A floods with 200 requests at once; merchant B sends 10 in the middle of it. */
async function flood(a: TestService, b: TestService = a) {
  const merchantA = `acct_flood_${randomBytes(3).toString("hex")}`;
  const merchantB = `acct_calm_${randomBytes(3).toString("hex")}`;
  await a.token(merchantA);
  await b.token(merchantB);
  const started = performance.now();
  const floodRequests = Array.from({ length: 200 }, (_, i) =>
    (i % 2 ? a : b).call("GET", "/v1/orders", { merchant: merchantA }),
  );
  const calm = Array.from({ length: 10 }, () => b.call("GET", "/v1/orders", { merchant: merchantB }));
  const [flooded, calmAnswers] = await Promise.all([Promise.all(floodRequests), Promise.all(calm)]);
  return { flooded, calmAnswers, elapsedMs: performance.now() - started };
}

describe("rate limits in one process", () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ env: LIMITS });
  });
  afterAll(() => t?.close());

  it("lets a burst of 40 through, then 429 with Retry-After; another merchant is not starved", async () => {
    const { flooded, calmAnswers, elapsedMs } = await flood(t);
    checkLimited(flooded, elapsedMs);
    expect(calmAnswers.map((a) => a.status)).toEqual(Array(10).fill(200));
  });

  it("limits unauthenticated requests per client address, apart from merchants", async () => {
    const live = await serveApp(t.app);
    try {
      const merchant = `acct_auth_${randomBytes(3).toString("hex")}`;
      const token = await t.token(merchant);
      const guesses = Array.from({ length: 120 }, () =>
        fetch(`${live.url}/v1/orders`, { headers: { Authorization: "Bearer not.a.token" } }),
      );
      const real = Array.from({ length: 10 }, () =>
        fetch(`${live.url}/v1/orders`, { headers: { Authorization: `Bearer ${token}` } }),
      );
      const [guessed, served] = await Promise.all([Promise.all(guesses), Promise.all(real)]);
      const statuses = guessed.map((r) => r.status);
      expect(statuses.filter((s) => s === 401).length).toBeGreaterThanOrEqual(40);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
      expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
      // Credential guessing from one address does not lock a merchant out.
      expect(served.map((r) => r.status)).toEqual(Array(10).fill(200));
    } finally {
      await live.close();
    }
  });
});

describe.skipIf(redisSkip)("rate limits on Redis, shared by two instances", () => {
  let cacheA: Cache;
  let cacheB: Cache;
  let a: TestService;
  let b: TestService;
  beforeAll(async () => {
    const prefix = `rel-rl:${randomBytes(4).toString("hex")}:`;
    cacheA = await openCache({ redisUrl: TEST_REDIS_URL, redisKeyPrefix: prefix });
    cacheB = await openCache({ redisUrl: TEST_REDIS_URL, redisKeyPrefix: prefix });
    await Promise.all([waitForCache(cacheA), waitForCache(cacheB)]);
    [a, b] = await Promise.all([
      startTestService({ env: LIMITS, cache: cacheA }),
      startTestService({ env: LIMITS, cache: cacheB }),
    ]);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it("a burst spread over both instances gets one budget of 40, not two; the other merchant is served", async () => {
    const { flooded, calmAnswers, elapsedMs } = await flood(a, b);
    checkLimited(flooded, elapsedMs);
    expect(calmAnswers.map((r) => r.status)).toEqual(Array(10).fill(200));
  });
});
