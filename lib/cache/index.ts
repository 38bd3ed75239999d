import type { Config } from "../config/index.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { Cache } from "./cache.ts";
import { memoryCache } from "./memory.ts";
import { type RedisCache, redisCache } from "./redis.ts";

export type { Cache } from "./cache.ts";

/**
 * Redis when REDIS_URL or REDIS_HOST is set, else the in-process cache. ioredis loads only when it is used, and
 * after `loadAfter` settles when one is given (see RedisCacheOptions).
 */
export async function openCache(
  config: Pick<Config, "redisUrl" | "redisKeyPrefix">,
  log?: Logger,
  loadAfter?: Promise<unknown>,
): Promise<Cache> {
  if (!config.redisUrl) return memoryCache();
  return redisCache(config.redisUrl, { keyPrefix: config.redisKeyPrefix, log, loadAfter });
}

export function isRedisCache(cache: Cache): cache is RedisCache {
  return cache.kind === "redis" && "client" in cache;
}
