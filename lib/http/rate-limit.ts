import type { Cache } from "../cache/cache.ts";
import { isRedisCache } from "../cache/index.ts";
import type { Config } from "../config/index.ts";
import type { Logger } from "../telemetry/logger.ts";
import { metrics } from "../telemetry/metrics.ts";
import { ApiError } from "./errors.ts";
import {
  BurstyRateLimiter,
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from "./rate-limiter-classes.ts";

export interface RateLimitDecision {
  headers: Record<string, string>;
}

export type RateLimiterFactory = (opts: {
  keyPrefix: string;
  points: number;
  duration: number;
}) => RateLimiterAbstract;

export const memoryLimiters: RateLimiterFactory = (opts) => new RateLimiterMemory(opts);

/** Limiters shared by every instance: built with `factory` as soon as it resolves, used from `inUse` on. */
export interface SharedLimiters {
  factory: Promise<RateLimiterFactory>;
  inUse: Promise<unknown>;
}

/**
 * Limits shared by every instance through Redis, once the Redis client has loaded (a function instance loads it
 * after its first answer). The limiters are built when the client is created, before it sends anything (they define
 * their Lua script on it, see RedisCache.client), and take over at its first connection. When Redis is unreachable
 * the limiter rejects at once (`rejectIfRedisNotReady`, no offline queue) and the request is let through: see the
 * store-error branch below.
 */
export function limitersFor(cache: Cache): RateLimiterFactory | SharedLimiters {
  if (!isRedisCache(cache)) return memoryLimiters;
  return {
    factory: cache.client.then(
      (client): RateLimiterFactory =>
        (opts) =>
          new RateLimiterRedis({ ...opts, storeClient: client, rejectIfRedisNotReady: true }),
    ),
    inUse: cache.connected,
  };
}

// One warning per this many milliseconds while the store is failing, not one per request.
const STORE_WARNING_INTERVAL_MS = 10_000;

/**
 * Per-key token-bucket-like limit: RATE_LIMIT_RPS sustained, RATE_LIMIT_BURST at once. rate-limiter-flexible's
 * BurstyRateLimiter pairs a per-second limiter with a slower burst allowance. Keys are merchants after auth and
 * client addresses before it.
 */
export function createRateLimiter(
  limits: Config["rateLimit"],
  store: RateLimiterFactory | SharedLimiters = memoryLimiters,
  log?: Logger,
) {
  let warnedAt = 0;
  const make = (factory: RateLimiterFactory, scope: string) =>
    new BurstyRateLimiter(
      factory({ keyPrefix: `rl:${scope}`, points: limits.rps, duration: 1 }),
      factory({
        keyPrefix: `rl:${scope}:burst`,
        points: Math.max(limits.burst - limits.rps, 1),
        duration: 10,
      }),
    );
  const limitersOf = (factory: RateLimiterFactory) => ({
    merchant: make(factory, "merchant"),
    ip: make(factory, "ip"),
  });
  // Until a shared store is there (Redis loads after the first answer), this instance counts on its own.
  let byScope = limitersOf(typeof store === "function" ? store : memoryLimiters);
  if (typeof store !== "function")
    store.factory
      .then(limitersOf)
      .then(async (shared) => {
        await store.inUse;
        byScope = shared;
      })
      .catch(() => {});

  return async function consume(scope: "merchant" | "ip", key: string): Promise<RateLimitDecision> {
    try {
      const res = await byScope[scope].consume(key);
      return { headers: headersOf(limits.rps, res) };
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        metrics.rateLimited.inc({ scope });
        const retryAfter = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
        throw new ApiError("rate_limited", "Too many requests; retry later.", {
          retryAfter,
          headers: headersOf(limits.rps, rejection),
        });
      }
      // The limiter's store failed (Redis down): fail open rather than refuse payments.
      metrics.rateLimited.inc({ scope: `${scope}_store_error` });
      if (Date.now() - warnedAt > STORE_WARNING_INTERVAL_MS) {
        warnedAt = Date.now();
        log?.warn(
          { scope, err: rejection instanceof Error ? rejection.message : String(rejection) },
          "rate limit store unavailable; requests are not rate limited until it is back",
        );
      }
      return { headers: {} };
    }
  };
}

function headersOf(limit: number, res: RateLimiterRes): Record<string, string> {
  return {
    "RateLimit-Limit": String(limit),
    "RateLimit-Remaining": String(Math.max(0, res.remainingPoints)),
    "RateLimit-Reset": String(Math.max(0, Math.ceil(res.msBeforeNext / 1000))),
  };
}
