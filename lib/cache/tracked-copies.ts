import type { Redis } from "ioredis";
import { LRUCache } from "lru-cache";
import type { Logger } from "../telemetry/logger.ts";

// Where Redis publishes the names of tracked keys that changed, to a RESP2 connection (ioredis drops RESP3's
// "invalidate" pushes, so the listening connection speaks RESP2).
const INVALIDATIONS = "__redis__:invalidate";
// Copies held per instance: status objects are about a kilobyte each.
const MAX_BYTES = 8 * 1024 * 1024;
// After tracking could not be turned on (a timeout, a refusal), the next try.
const RETRY_ARM_MS = 10_000;

/**
 * This instance's copies of values read from Redis, kept current by Redis itself (server-assisted client-side
 * caching: CLIENT TRACKING … REDIRECT … OPTIN). Whenever anyone changes or expires a copied key, Redis sends its name
 * to this instance's listening connection, and the copy is dropped.
 *
 * A copy is served only after a PING sent on the listening connection after the read arrived has been answered:
 * Redis sends a key's name there as it executes the change, ahead of anything it answers later on that connection,
 * so by the pong every change acknowledged to anyone before the read arrived has dropped its copies. The reads that
 * arrive together share one PING. A read is then one round trip on a connection carrying a few bytes, instead of a
 * GET on the busy one. While either connection is down no copy is used and all are dropped: reads go to Redis.
 */
export class TrackedCopies {
  private readonly copies = new LRUCache<string, string>({
    maxSize: MAX_BYTES,
    sizeCalculation: (value, key) => value.length + key.length,
  });
  // A read in flight per key: an invalidation that arrives before its reply (the two travel on different
  // connections) removes it, and the reply is then not kept.
  private readonly pending = new Map<string, symbol>();
  private listener: Redis | undefined;
  private nextPing: Promise<unknown> | undefined;
  private retry: NodeJS.Timeout | undefined;
  // Bumped whenever every copy is dropped: a read that started before keeps nothing.
  private generation = 0;
  // Bumped at each connection loss: an arming that a loss overtook does not arm.
  private epoch = 0;
  private armed = false;
  private listenerId: number | undefined;
  private warned = false;

  constructor(
    private readonly main: Redis,
    private readonly keyPrefix = "",
    private readonly log?: Logger,
  ) {
    main.on("ready", () => this.arm().catch((error) => this.failedToArm(error)));
    main.on("close", () => this.disarm());
  }

  /** Redis's value of `key`, from this instance's copy when one is current. */
  async get(key: string): Promise<string | undefined> {
    this.listen();
    const fullKey = this.keyPrefix + key;
    if (!this.armed) return (await this.main.get(key)) ?? undefined;
    if (this.copies.has(fullKey)) {
      const caughtUp = await this.caughtUp().then(
        () => true,
        () => false,
      );
      const copy = this.copies.get(fullKey);
      if (caughtUp && copy !== undefined) return copy;
      if (!this.armed) return (await this.main.get(key)) ?? undefined;
    }
    return this.readAndCopy(key, fullKey);
  }

  /** This instance is changing `key`: its copy goes before the write is sent and again once it is done. */
  forget(key: string): void {
    const fullKey = this.keyPrefix + key;
    this.copies.delete(fullKey);
    this.pending.delete(fullKey);
  }

  /** Whether a copy of `key` is held. */
  holds(key: string): boolean {
    return this.copies.has(this.keyPrefix + key);
  }

  /** Whether reads may be answered from copies now. */
  get tracking(): boolean {
    return this.armed;
  }

  async close(): Promise<void> {
    clearTimeout(this.retry);
    this.disarm();
    await this.listener?.quit().catch(() => this.listener?.disconnect());
  }

  private async readAndCopy(key: string, fullKey: string): Promise<string | undefined> {
    const token = Symbol(fullKey);
    const generation = this.generation;
    this.pending.set(fullKey, token);
    try {
      // CLIENT CACHING YES tracks the command right after it: the three go out together, nothing between them.
      const results = (await this.main.pipeline().client("CACHING", "YES").get(key).pttl(key).exec()) ?? [];
      const [readError, value] = results[1] ?? [new Error("no reply")];
      if (readError) throw readError;
      const [cachingRefused] = results[0] ?? [];
      if (cachingRefused) {
        // Refused by an ACL, or tracking is off on a connection that just came back: the read is not tracked.
        if (generation === this.generation) this.armed = false;
        this.failedToArm(cachingRefused);
        return typeof value === "string" ? value : undefined;
      }
      const ttlMs = Number(results[2]?.[1]);
      if (
        typeof value === "string" &&
        ttlMs > 0 &&
        generation === this.generation &&
        this.pending.get(fullKey) === token
      ) {
        this.copies.set(fullKey, value, { ttl: ttlMs });
      }
      return typeof value === "string" ? value : undefined;
    } finally {
      if (this.pending.get(fullKey) === token) this.pending.delete(fullKey);
    }
  }

  /** Settles once the listening connection has answered a PING sent after this call. */
  private caughtUp(): Promise<unknown> {
    if (!this.nextPing) {
      // Sent once the reads arriving in this turn of the event loop have joined it, never before any of them.
      this.nextPing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.nextPing = undefined;
        const listener = this.listener;
        if (!listener || listener.status !== "ready") throw new Error("not listening");
        return listener.ping();
      });
      // A listener that does not answer in time (the command timeout) cannot vouch for any copy.
      this.nextPing.catch(() => this.dropAll());
    }
    return this.nextPing;
  }

  /** Opens the listening connection, at the first read: functions that never read status never open it. */
  private listen(): void {
    if (this.listener) return;
    // Subscriptions are made again by hand at each connection, after the new connection's id is known.
    const listener = this.main.duplicate({
      protocol: 2,
      autoResubscribe: false,
      enableAutoPipelining: false,
    });
    this.listener = listener;
    listener.on("messageBuffer", (channel: Buffer, keys: Buffer[] | null) => {
      if (channel.toString() === INVALIDATIONS) this.invalidated(keys);
    });
    // Its failures show as a closed connection (below) and as the main client's own errors.
    listener.on("error", () => {});
    listener.on("ready", () => this.subscribe(listener).catch((error) => this.failedToArm(error)));
    listener.on("close", () => this.disarm());
    listener.connect().catch(() => {}); // retried by the client's retryStrategy
  }

  private async subscribe(listener: Redis): Promise<void> {
    const id = Number(await listener.client("ID"));
    await listener.subscribe(INVALIDATIONS);
    this.listenerId = id;
    await this.arm();
  }

  private async arm(): Promise<void> {
    const id = this.listenerId;
    if (id === undefined || this.main.status !== "ready" || this.listener?.status !== "ready") return;
    const epoch = this.epoch;
    // Off first: the redirect then names this listener whatever tracking the connection had before.
    const results = await this.main
      .pipeline()
      .client("TRACKING", "OFF")
      .client("TRACKING", "ON", "REDIRECT", id, "OPTIN")
      .exec();
    const refused = results?.find(([error]) => error)?.[0];
    if (refused) throw refused;
    // A connection closed meanwhile: tracking is armed again when it is back.
    if (id !== this.listenerId || epoch !== this.epoch) return;
    this.dropAll();
    this.armed = true;
  }

  private invalidated(keys: Buffer[] | null): void {
    // A null list: the whole database was flushed.
    if (keys === null) {
      this.dropAll();
      return;
    }
    for (const key of keys) {
      const name = key.toString();
      this.copies.delete(name);
      this.pending.delete(name);
    }
  }

  private disarm(): void {
    this.armed = false;
    this.epoch++;
    if (this.listener?.status !== "ready") this.listenerId = undefined;
    this.dropAll();
  }

  private dropAll(): void {
    this.generation++;
    this.copies.clear();
    this.pending.clear();
  }

  private failedToArm(error: unknown): void {
    this.retry ??= setTimeout(() => {
      this.retry = undefined;
      this.arm().catch((again) => this.failedToArm(again));
    }, RETRY_ARM_MS).unref();
    if (this.warned) return;
    this.warned = true;
    this.log?.warn(
      { err: error instanceof Error ? error.message : String(error) },
      "redis client tracking unavailable; status reads go to Redis each time",
    );
  }
}
