import { once } from "node:events";
import type { Redis, RedisOptions } from "ioredis";
import type { Logger } from "../telemetry/logger.ts";
import type { Cache } from "./cache.ts";

export interface RedisCache extends Cache {
  readonly kind: "redis";
  /**
   * The client as soon as it exists, before it has sent any command, shared with the rate limiter
   * (rate-limiter-flexible's RateLimiterRedis). What has to be set up on a client before its first command is set up
   * here: ioredis crashes the process when a script defined with `defineCommand` is called in the same tick as
   * commands it had already queued on an auto-pipeline ("pipeline[functionName] is not a function", then "results[i]
   * is not iterable" thrown from its own callback).
   */
  readonly client: Promise<Redis>;
  /** Settles at the client's first connection: until then reads miss and the rate limiter counts on this instance. */
  readonly connected: Promise<unknown>;
}

export interface RedisCacheOptions {
  keyPrefix?: string;
  log?: Logger;
  /** Upper bound of one command; a healthy Redis answers in well under a millisecond. */
  commandTimeoutMs?: number;
  /** Longest wait between reconnection attempts. */
  maxReconnectDelayMs?: number;
  /**
   * ioredis (≈ 420 KiB of JavaScript to compile) loads and connects once this settles, or at the first write,
   * whichever comes first; at once without it. A function instance passes its first answer here, so a cold start's
   * first customer does not wait for a client that answer can do without.
   */
  loadAfter?: Promise<unknown>;
  /**
   * The longest TTL any instance sharing this Redis gives an entry (the idempotency lock's 60 s): an unsent write
   * older than that guards nothing any more and is dropped instead of replayed.
   */
  longestTtlMs?: number;
}

const loadIoredis = () => import("ioredis");
type IoredisModule = Awaited<ReturnType<typeof loadIoredis>>;
const moduleHooks: ((ioredis: IoredisModule) => void)[] = [];
let ioredisModule: IoredisModule | undefined;

/**
 * Runs `hook` with the ioredis module once a cache has loaded it, or at once if one has: tracing patches the client
 * class there, so turning it on does not load ioredis at start-up.
 */
export function whenIoredisLoads(hook: (ioredis: IoredisModule) => void): void {
  if (ioredisModule) hook(ioredisModule);
  else moduleHooks.push(hook);
}

// How long a write made before the first connection waits for it: about one connection attempt.
const FIRST_CONNECTION_WAIT_MS = 2_000;
// How long shutdown waits for a connection that is coming back, to send the writes still unsent (see close()).
const CLOSE_REPLAY_WAIT_MS = 2_000;

/** What locks, pings and writes that could not wait get before the client's first connection. */
export class RedisNotLoadedError extends Error {
  constructor() {
    super("Redis client not connected yet");
  }
}

// Failed invalidations kept for replay; past this many, reads bypass Redis until whatever they guarded expired.
const MAX_UNSENT_WRITES = 10_000;

/**
 * Options for a function instance, where Redis accelerates and never decides: a dead or slow Redis must cost a
 * request at most one short timeout, never a hang, and the client must come back by itself when Redis does.
 */
export function redisOptions(options: RedisCacheOptions = {}): RedisOptions {
  const maxDelay = options.maxReconnectDelayMs ?? 2_000;
  return {
    keyPrefix: options.keyPrefix,
    // Start-up neither waits for nor fails on Redis; the connection is opened in the background.
    lazyConnect: true,
    // While disconnected, commands fail at once instead of queueing behind a reconnect: callers fall back to
    // PostgreSQL (or fail open) immediately.
    enableOfflineQueue: false,
    // Commands issued in the same tick (a rate-limit check, a cache read, a lock) go out in one write.
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 500,
    // A Redis that stops answering (network partition, no RST) has its connection dropped, so later commands fail
    // at once while it reconnects instead of each waiting out the command timeout.
    socketTimeout: (options.commandTimeoutMs ?? 500) * 2,
    connectTimeout: 2_000,
    // Exponential backoff with jitter, capped low: a restarted Redis is in use again within seconds.
    retryStrategy: (times) =>
      Math.min(50 * 2 ** Math.min(times, 10), maxDelay) + Math.floor(Math.random() * 100),
  };
}

/** Redis through ioredis, with the service's key prefix. */
export function redisCache(url: string, options: RedisCacheOptions = {}): RedisCache {
  const log = options.log;
  let client: Redis | undefined;
  let closed = false;
  let loadNow = () => {};
  const writeArrived = new Promise<void>((resolve) => {
    loadNow = resolve;
  });
  let firstConnection = () => {};
  const connected = new Promise<void>((resolve) => {
    firstConnection = resolve;
  });
  const loaded = Promise.race([options.loadAfter ?? Promise.resolve(), writeArrived])
    .catch(() => {})
    .then(loadIoredis)
    .then((ioredis) => {
      if (!ioredisModule) {
        ioredisModule = ioredis;
        for (const hook of moduleHooks.splice(0)) hook(ioredis);
      }
      // CommonJS: bundled, the class is the module's default export; under Node's own loader, also a named one.
      return ioredis.Redis ?? ioredis.default;
    })
    .then((Redis) => {
      if (closed) throw new RedisNotLoadedError();
      client = new Redis(url, redisOptions(options));
      watch(client);
      client.connect().catch(() => {}); // retried by retryStrategy; failures surface as the commands' errors
      return client;
    });
  loaded.catch((error) => {
    if (!closed) log?.error({ err: error }, "redis client failed to load; serving from PostgreSQL");
  });
  // A write must reach Redis before the change it announces is answered (another instance may be serving the old
  // state from the cache): one made before the first connection loads the client and waits for it, a short while.
  // Once a wait has run out (Redis down at start), later writes fail at once and are replayed, as on any outage.
  let waitedInVain = false;
  const firstConnectionOrTimeout = async () => {
    if (waitedInVain) return;
    loadNow();
    const up = await Promise.race([
      connected.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), FIRST_CONNECTION_WAIT_MS).unref()),
    ]);
    if (!up) waitedInVain = true;
  };
  // Nothing is sent before the first connection: a command would only fail (no offline queue), and one queued on an
  // auto-pipeline before the rate limiter defined its script would take that script's call with it (see `client`).
  const connection = () => {
    if (!client || !connectedOnce) throw new RedisNotLoadedError();
    return client;
  };

  // A change whose invalidation could not be written leaves a stale entry in Redis if Redis kept its data (a
  // network cut rather than a restart). Such writes are replayed when the connection is back, before any read.
  const unsent = new Map<string, { value?: string; ttlMs: number; at: number }>();
  let longestTtlMs = options.longestTtlMs ?? 60_000;
  let bypassReadsUntil = 0;
  let replaying: Promise<void> | undefined;
  const remember = (key: string, value: string | undefined, ttlMs: number) => {
    if (unsent.size >= MAX_UNSENT_WRITES && !unsent.has(key)) {
      bypassReadsUntil = Date.now() + longestTtlMs;
      return;
    }
    unsent.set(key, { value, ttlMs, at: Date.now() });
  };
  const replay = async () => {
    const batch = connection().pipeline();
    // A write older than the longest TTL guards nothing any more: what it would have replaced has expired.
    const horizon = Date.now() - Math.max(longestTtlMs, 1_000);
    const sent = [...unsent.entries()].filter(([, w]) => w.at > horizon);
    for (const [key, write] of sent) {
      if (write.value === undefined) batch.del(key);
      else batch.set(key, write.value, "PX", write.ttlMs);
    }
    const results = (await batch.exec()) ?? [];
    // Only what was sent and not written again meanwhile leaves the map, with what had expired.
    sent.forEach(([key, write], i) => {
      if (!results[i]?.[0] && unsent.get(key) === write) unsent.delete(key);
    });
    for (const [key, write] of unsent) if (write.at <= horizon) unsent.delete(key);
  };
  // On reconnection, and at most once a second while some remain (a write that timed out on a live connection).
  let lastReplayAt = 0;
  const replayIfDue = () => {
    if (unsent.size === 0 || replaying || client?.status !== "ready" || Date.now() - lastReplayAt < 1_000)
      return;
    lastReplayAt = Date.now();
    replaying = replay()
      .catch(() => {})
      .finally(() => {
        replaying = undefined;
      });
  };
  // At shutdown an unsent invalidation would otherwise be lost with the process, and every other instance would
  // serve the state it replaced until that entry expires: one last replay, on a connection that is up or back soon.
  const sendUnsent = async () => {
    if (unsent.size === 0 || !client || !connectedOnce) return;
    if (client.status !== "ready") {
      await once(client, "ready", { signal: AbortSignal.timeout(CLOSE_REPLAY_WAIT_MS) }).catch(() => {});
    }
    await replaying;
    if (unsent.size > 0 && client.status === "ready") await replay().catch(() => {});
    if (unsent.size > 0) {
      log?.warn(
        { unsent: unsent.size },
        "cache invalidations left unsent at shutdown: those entries are served until they expire",
      );
    }
  };
  let healthy = true;
  let connectedOnce = false;
  function watch(redis: Redis) {
    redis.on("error", (error: Error) => {
      if (healthy)
        log?.warn({ err: error.message }, "redis unavailable; serving from PostgreSQL until it is back");
      healthy = false;
    });
    redis.on("ready", () => {
      connectedOnce = true;
      firstConnection();
      if (!healthy) log?.info("redis is back");
      healthy = true;
      lastReplayAt = 0;
      replayIfDue();
    });
  }

  const track = (ttlMs: number) => {
    if (ttlMs > longestTtlMs) longestTtlMs = ttlMs;
  };

  return {
    kind: "redis",
    client: loaded,
    connected,
    async get(key) {
      // Before the first connection, a miss: the reader goes to PostgreSQL as for any key not cached yet.
      if (!connectedOnce) return undefined;
      replayIfDue();
      if (replaying) await replaying;
      const value = await connection().get(key);
      // Writes still unsent mean Redis may hold entries they should have replaced: not yet safe to trust it.
      if (unsent.size > 0 || Date.now() < bypassReadsUntil) return undefined;
      return value ?? undefined;
    },
    async set(key, value, ttlMs) {
      track(ttlMs);
      if (!connectedOnce) await firstConnectionOrTimeout();
      try {
        await connection().set(key, value, "PX", ttlMs);
        unsent.delete(key);
      } catch (error) {
        remember(key, value, ttlMs);
        throw error;
      }
    },
    async setIfAbsent(key, value, ttlMs) {
      track(ttlMs);
      return (await connection().set(key, value, "PX", ttlMs, "NX")) === "OK";
    },
    async del(key) {
      if (!connectedOnce) await firstConnectionOrTimeout();
      try {
        await connection().del(key);
        unsent.delete(key);
      } catch (error) {
        remember(key, undefined, longestTtlMs);
        throw error;
      }
    },
    async ping() {
      await connection().ping();
    },
    async close() {
      closed = true;
      await sendUnsent();
      await client?.quit().catch(() => client?.disconnect());
    },
  };
}
