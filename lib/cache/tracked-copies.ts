import type { Redis } from "ioredis";
import { LRUCache } from "lru-cache";
import type { Logger } from "../telemetry/logger.ts";

// Where Redis publishes the names of tracked keys that changed, to a RESP2 connection (ioredis drops RESP3's
// "invalidate" pushes, so the listening connection speaks RESP2).
const INVALIDATIONS = "__redis__:invalidate";
// The listening connection is pinged this often; copies are used only while its last answer is this recent. Pings
// and invalidations travel the same connection in order: a pong means every invalidation sent before it arrived.
const PING_EVERY_MS = 500;
const TRUST_FOR_MS = 1_500;
// Copies held per instance: status objects are about a kilobyte each.
const MAX_BYTES = 8 * 1024 * 1024;

/**
 * This instance's copies of values read from Redis, kept current by Redis itself (server-assisted client-side
 * caching: CLIENT TRACKING … REDIRECT … OPTIN). A read is answered from its copy without a round trip; whenever
 * anyone changes or expires a copied key, Redis sends its name to this instance's listening connection, and the
 * copy is dropped. While either connection is down, or the listening one has not answered a ping lately, no copy is
 * used and all are dropped: reads go to Redis as before.
 */
export class TrackedCopies {
  private readonly copies = new LRUCache<string, string>({
    maxSize: MAX_BYTES,
    sizeCalculation: (value, key) => value.length + key.length,
  });
  // A read in flight per key: an invalidation that arrives before its reply (the two travel on different
  // connections) removes it, and the reply is then not kept.
  private readonly pending = new Map<string, symbol>();
  private readonly listener: Redis;
  private readonly timer: NodeJS.Timeout;
  private generation = 0;
  // Counts connection losses: an arming that a loss overtook does not arm.
  private epoch = 0;
  private armed = false;
  private lastPongAt = 0;
  private listenerId: number | undefined;
  private warned = false;

  constructor(
    private readonly main: Redis,
    private readonly keyPrefix = "",
    private readonly log?: Logger,
  ) {
    // Subscriptions are made again by hand at each connection, after the new connection's id is known.
    this.listener = main.duplicate({ protocol: 2, autoResubscribe: false, enableAutoPipelining: false });
    this.listener.on("messageBuffer", (channel: Buffer, keys: Buffer[] | null) => {
      if (channel.toString() === INVALIDATIONS) this.invalidated(keys);
    });
    // Its failures show as a closed connection (below) and as the main client's own errors.
    this.listener.on("error", () => {});
    this.listener.on("ready", () => this.listen().catch((error) => this.failedToArm(error)));
    this.listener.on("close", () => this.disarm());
    main.on("ready", () => this.arm().catch((error) => this.failedToArm(error)));
    main.on("close", () => this.disarm());
    this.timer = setInterval(() => this.ping(), PING_EVERY_MS).unref();
    this.listener.connect().catch(() => {}); // retried by the client's retryStrategy
  }

  /** The copy of `key` if there is a trustworthy one, else Redis's value (copied when tracking is on). */
  async get(key: string): Promise<string | undefined> {
    const fullKey = this.keyPrefix + key;
    if (!this.usable()) return (await this.main.get(key)) ?? undefined;
    const copy = this.copies.get(fullKey);
    if (copy !== undefined) return copy;
    const token = Symbol(fullKey);
    const generation = this.generation;
    this.pending.set(fullKey, token);
    try {
      // CLIENT CACHING YES tracks the command right after it: the three go out together, nothing between them.
      const results = (await this.main.pipeline().client("CACHING", "YES").get(key).pttl(key).exec()) ?? [];
      const [readError, value] = results[1] ?? [new Error("no reply")];
      if (readError) throw readError;
      const ttlMs = Number(results[2]?.[1]);
      // A refused CACHING YES (tracking off on a connection that just came back) means the read is not tracked.
      const tracked = !results[0]?.[0];
      if (
        tracked &&
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

  /** This instance is about to change `key`: its copy goes now, before Redis's message about it. */
  forget(key: string): void {
    const fullKey = this.keyPrefix + key;
    this.copies.delete(fullKey);
    this.pending.delete(fullKey);
  }

  /** Settles once every invalidation Redis sent before this call has been applied (they share one connection). */
  async settled(): Promise<void> {
    await this.listener.ping();
    this.lastPongAt = Date.now();
  }

  /** Whether reads are answered from copies now. */
  get tracking(): boolean {
    return this.usable();
  }

  /** How many copies are held. */
  get size(): number {
    return this.copies.size;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.disarm();
    await this.listener.quit().catch(() => this.listener.disconnect());
  }

  private usable(): boolean {
    return this.armed && Date.now() - this.lastPongAt < TRUST_FOR_MS;
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

  private async listen(): Promise<void> {
    const id = Number(await this.listener.client("ID"));
    await this.listener.subscribe(INVALIDATIONS);
    this.listenerId = id;
    this.lastPongAt = Date.now();
    await this.arm();
  }

  private async arm(): Promise<void> {
    const id = this.listenerId;
    if (id === undefined || this.main.status !== "ready" || this.listener.status !== "ready") return;
    const epoch = this.epoch;
    // Off first: ON with another REDIRECT is refused while tracking is on (a reconnected listener has a new id).
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

  private disarm(): void {
    this.armed = false;
    this.epoch++;
    this.listenerId = this.listener.status === "ready" ? this.listenerId : undefined;
    this.dropAll();
  }

  private dropAll(): void {
    this.generation++;
    this.copies.clear();
    this.pending.clear();
  }

  private ping(): void {
    if (this.listener.status !== "ready") return;
    this.listener.ping().then(
      () => {
        this.lastPongAt = Date.now();
      },
      () => this.dropAll(),
    );
  }

  private failedToArm(error: unknown): void {
    if (this.warned) return;
    this.warned = true;
    this.log?.warn(
      { err: error instanceof Error ? error.message : String(error) },
      "redis client tracking unavailable; status reads go to Redis each time",
    );
  }
}
