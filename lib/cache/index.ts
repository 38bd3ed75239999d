import type { Config } from "../config/index.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { Cache } from "./cache.ts";
import { memoryCache } from "./memory.ts";
import type { RedisCache } from "./redis.ts";

export type { Cache } from "./cache.ts";

/** Redis when REDIS_URL or REDIS_HOST is set, else the in-process cache. ioredis loads only when it is used. */
export async function openCache(
  config: Pick<Config, "redisUrl" | "redisKeyPrefix">,
  log?: Logger,
): Promise<Cache> {
  if (!config.redisUrl) return memoryCache();
  const { redisCache } = await import("./redis.ts");
  return redisCache(config.redisUrl, { keyPrefix: config.redisKeyPrefix, log });
}

export function isRedisCache(cache: Cache): cache is RedisCache {
  return cache.kind === "redis" && "client" in cache;
}
