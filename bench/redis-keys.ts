import { Redis } from "ioredis";

/**
 * The bench gives the service a Redis key prefix of its own, so whether the service used Redis at all is a fact
 * we can look up afterwards (keys under the prefix), and the keys can be removed at the end.
 */
async function withRedis<T>(url: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2_000 });
  redis.on("error", () => {});
  await redis.connect();
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

export async function redisReachable(url: string): Promise<boolean> {
  return withRedis(url, async (r) => (await r.ping()) === "PONG").catch(() => false);
}

/** How many keys exist under the prefix (stops counting at `limit`). */
export async function countKeys(url: string, prefix: string, limit = 1_000): Promise<number> {
  return withRedis(url, async (redis) => {
    let cursor = "0";
    let count = 0;
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1_000);
      cursor = next;
      count += keys.length;
    } while (cursor !== "0" && count < limit);
    return count;
  });
}

export async function deleteKeys(url: string, prefix: string): Promise<void> {
  await withRedis(url, async (redis) => {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1_000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== "0");
  });
}
