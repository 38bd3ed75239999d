import type { Queryable } from "../db/db.ts";
import type { Logger } from "../telemetry/logger.ts";
import { metrics } from "../telemetry/metrics.ts";
import { parseCeOverrides } from "./ce-overrides.ts";
import { claimDueEvents, markFailed, markSent, type OutboxRow, readOutboxLag } from "./outbox-store.ts";
import { createSinkPost, type SinkPost } from "./sink-client.ts";

export interface DispatcherOptions {
  db: Queryable;
  log: Logger;
  /** K_SINK: where events go (a Knative Broker's ingress, injected by a SinkBinding). */
  sink: string;
  /** K_CE_OVERRIDES JSON. */
  ceOverrides?: string;
  /** Timer between passes; 0 leaves only the wake-after-commit and drain triggers. */
  pollIntervalMs?: number;
  /** Events claimed (and sent concurrently) per round; at most one per partition. */
  batchSize?: number;
  /** How long a claim holds events before another pass may send them again (must exceed sendTimeoutMs). */
  leaseSeconds?: number;
  sendTimeoutMs?: number;
  /** Backoff after a failed delivery: base × 2^(attempts-1), capped. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Commits close together wake one pass. */
  debounceMs?: number;
  /** A pass stops claiming after this long, so a drain request returns while the sink is slow. */
  maxPassMs?: number;
  /** How events reach the sink; node:http with keep-alive unless given. */
  post?: SinkPost;
}

export interface DrainResult {
  sent: number;
  failed: number;
  /** Events still waiting after the pass (not yet due, or failed) and the oldest one's age. */
  pending: number;
  lagSeconds: number;
}

export interface OutboxDispatcher {
  /** One pass: sends every due event until none is left. Calls made during a pass get one more pass after it. */
  drain(): Promise<DrainResult>;
  /** Called after each commit that wrote events; starts a pass soon. Does nothing until start(). */
  wake(): void;
  /** Starts the timer and the wake-ups, and sends what a previous process left behind. */
  start(): void;
  /** Stops the timer, waits for the pass in progress, and sends what commits just before asked for. */
  stop(): Promise<void>;
}

/**
 * The transactional outbox's sender: every state change wrote its event row in its own transaction; this sends the
 * rows to the sink as CloudEvents (binary mode) and marks them sent. Delivery is at least once (a crash between
 * send and mark sends again; consumers deduplicate on `id`), in order per partition, with exponential backoff per
 * event; several instances share the work through lease claims (outbox-store.ts).
 */
export function createOutboxDispatcher(options: DispatcherOptions): OutboxDispatcher {
  const {
    db,
    log,
    sink,
    pollIntervalMs = 5_000,
    batchSize = 100,
    leaseSeconds = 30,
    sendTimeoutMs = 10_000,
    retryBaseMs = 1_000,
    retryMaxMs = 300_000,
    debounceMs = 10,
    maxPassMs = 20_000,
  } = options;
  // One client (one connection pool) for every send, created at the first: the batch's sends share its promise.
  let sinkPost: Promise<SinkPost> | undefined = options.post && Promise.resolve(options.post);
  const overrides = parseCeOverrides(options.ceOverrides);
  const backoff = (attempts: number) => Math.min(retryMaxMs, retryBaseMs * 2 ** Math.max(0, attempts - 1));

  let started = false;
  let current: Promise<DrainResult> | undefined;
  let queued: Promise<DrainResult> | undefined;
  let wakeTimer: NodeJS.Timeout | undefined;
  let pollTimer: NodeJS.Timeout | undefined;

  async function deliver(row: OutboxRow): Promise<void> {
    // The CloudEvents SDK (with its JSON-schema validator) loads on the first send, not at every cold start.
    const { toBinaryRequest, toCloudEvent } = await import("./cloudevent-out.ts");
    sinkPost ??= createSinkPost(sink, sendTimeoutMs, batchSize);
    const post = await sinkPost;
    const { headers, body } = toBinaryRequest(toCloudEvent(row, overrides));
    const status = await post(headers, body);
    if (status < 200 || status > 299) throw new Error(`sink answered ${status}`);
  }

  async function pass(): Promise<DrainResult> {
    const deadline = Date.now() + maxPassMs;
    let sent = 0;
    let failed = 0;
    while (Date.now() < deadline) {
      const rows = await claimDueEvents(db, batchSize, leaseSeconds);
      if (rows.length === 0) break;
      const results = await Promise.allSettled(rows.map(deliver));
      const delivered: number[] = [];
      const failures: { seq: number; attempts: number; error: string }[] = [];
      results.forEach((result, i) => {
        const row = rows[i] as OutboxRow;
        if (result.status === "fulfilled") delivered.push(row.seq);
        else failures.push({ seq: row.seq, attempts: row.attempts, error: errorText(result.reason) });
      });
      await markSent(db, delivered);
      await markFailed(db, failures, backoff);
      sent += delivered.length;
      failed += failures.length;
      metrics.outboxDelivered.inc(delivered.length);
      metrics.outboxDeliveryFailures.inc(failures.length);
      if (failures.length > 0) {
        log.warn(
          {
            failed: failures.length,
            event_ids: failures.slice(0, 5).map((f) => rows.find((r) => r.seq === f.seq)?.id),
            error: failures[0]?.error,
          },
          "event delivery failed; retrying with backoff",
        );
      }
    }
    const lag = await readOutboxLag(db);
    return { sent, failed, pending: lag.pending, lagSeconds: lag.lagSeconds };
  }

  function drain(): Promise<DrainResult> {
    if (!current) {
      current = pass().finally(() => {
        current = undefined;
      });
      return current;
    }
    // Events committed while a pass runs may have missed its last claim: one more pass follows it.
    queued ??= current
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return drain();
      });
    return queued;
  }

  const drainInBackground = () => {
    drain().catch((error) => log.warn({ err: errorText(error) }, "outbox pass failed"));
  };

  return {
    drain,
    wake() {
      if (!started || wakeTimer) return;
      wakeTimer = setTimeout(() => {
        wakeTimer = undefined;
        drainInBackground();
      }, debounceMs);
    },
    start() {
      if (started) return;
      started = true;
      if (pollIntervalMs > 0) {
        pollTimer = setInterval(drainInBackground, pollIntervalMs);
        pollTimer.unref();
      }
      drainInBackground();
    },
    async stop() {
      // Events of the last requests would otherwise wait for another instance or the PingSource's drain.
      const woken = wakeTimer !== undefined;
      started = false;
      clearTimeout(wakeTimer);
      clearInterval(pollTimer);
      wakeTimer = undefined;
      pollTimer = undefined;
      await Promise.allSettled([current, queued]);
      if (woken) await drain().catch(() => undefined);
    },
  };
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
  }
  return String(error);
}
