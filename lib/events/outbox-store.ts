import type { Queryable } from "../db/db.ts";
import { metrics } from "../telemetry/metrics.ts";

/** One outbox row as the dispatcher sends it (table in migration 001). */
export interface OutboxRow {
  seq: number;
  id: string;
  type: string;
  source: string;
  subject: string;
  partition_key: string;
  merchant_id: string;
  data: unknown;
  traceparent: string | null;
  created_at: Date;
  attempts: number;
}

/**
 * Claims up to `limit` due events, at most one per partition and only a partition's oldest unsent event, so a
 * partition's events go out in order even with several dispatchers. The claim is a lease (next_attempt_at moves
 * `leaseSeconds` ahead) committed at once, so no transaction stays open while the sink is called; if this process
 * dies before marking the events sent, the lease runs out and another pass sends them again (at least once).
 * SKIP LOCKED lets concurrent claimers pass each other; the due and unsent conditions are checked again on the
 * locked row (the update's own condition) so a claimer that read an old snapshot cannot take a row someone else
 * claimed meanwhile.
 *
 * Written so that no plan can be worse than one pass over the unsent events, whatever the statistics say: the
 * partitions' heads come from one ordered pass (DISTINCT ON), computed once (MATERIALIZED), and the rows are
 * locked by primary key. A correlated NOT EXISTS per event, planned on statistics taken while nothing was waiting,
 * rescanned the unsent events for each one: a claim over 5,000 waiting events took 334 s instead of 9 ms, so a
 * backlog (a sink down for a while, or a busy minute) could never drain.
 */
export async function claimDueEvents(
  db: Queryable,
  limit: number,
  leaseSeconds: number,
): Promise<OutboxRow[]> {
  const { rows } = await db.query<OutboxRow>(
    `WITH due AS MATERIALIZED (
       SELECT seq FROM (
         SELECT DISTINCT ON (partition_key) seq, next_attempt_at FROM outbox
         WHERE sent_at IS NULL ORDER BY partition_key, seq
       ) heads
       WHERE next_attempt_at <= now()
       ORDER BY seq LIMIT $1
     ), claimed AS (
       SELECT o.seq FROM outbox o WHERE o.seq = ANY(ARRAY(SELECT seq FROM due)) FOR UPDATE SKIP LOCKED
     )
     UPDATE outbox o
     SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
     FROM claimed c WHERE o.seq = c.seq AND o.sent_at IS NULL AND o.next_attempt_at <= now()
     RETURNING o.seq, o.id, o.type, o.source, o.subject, o.partition_key, o.merchant_id, o.data, o.traceparent,
               o.created_at, o.attempts`,
    [limit, leaseSeconds],
  );
  return rows.sort((a, b) => a.seq - b.seq);
}

export async function markSent(db: Queryable, seqs: number[]): Promise<void> {
  if (seqs.length === 0) return;
  await db.query(
    "UPDATE outbox SET sent_at = now(), last_error = NULL WHERE seq = ANY($1::bigint[]) AND sent_at IS NULL",
    [seqs],
  );
}

/** Schedules the next attempt of failed events: exponential backoff from their attempt count, capped. */
export async function markFailed(
  db: Queryable,
  failures: { seq: number; attempts: number; error: string }[],
  backoff: (attempts: number) => number,
): Promise<void> {
  if (failures.length === 0) return;
  await db.query(
    `UPDATE outbox o SET next_attempt_at = now() + make_interval(secs => f.delay), last_error = f.error
     FROM unnest($1::bigint[], $2::float8[], $3::text[]) AS f(seq, delay, error)
     WHERE o.seq = f.seq AND o.sent_at IS NULL`,
    [
      failures.map((f) => f.seq),
      failures.map((f) => backoff(f.attempts) / 1000),
      failures.map((f) => f.error.slice(0, 500)),
    ],
  );
}

/** Age of the oldest undelivered event and the number waiting; sets the outbox gauges as a side effect. */
export async function readOutboxLag(db: Queryable): Promise<{ lagSeconds: number; pending: number }> {
  const { rows } = await db.query<{ lag: number | null; pending: number }>(
    `SELECT EXTRACT(EPOCH FROM now() - (SELECT created_at FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT 1))::float8 AS lag,
            (SELECT count(*) FROM outbox WHERE sent_at IS NULL)::int AS pending`,
  );
  const lagSeconds = Math.max(0, rows[0]?.lag ?? 0);
  const pending = rows[0]?.pending ?? 0;
  metrics.outboxLag.set(lagSeconds);
  metrics.outboxPending.set(pending);
  return { lagSeconds, pending };
}

export interface OutboxListing {
  id: string;
  type: string;
  subject: string;
  partition_key: string;
  created_at: string;
  sent_at: string | null;
  attempts: number;
  last_error: string | null;
}

/** The newest events, without their data (which is merchant data): what was announced and whether it went out. */
export async function listRecentEvents(db: Queryable, limit: number): Promise<OutboxListing[]> {
  const { rows } = await db.query<
    Omit<OutboxListing, "created_at" | "sent_at"> & {
      created_at: Date;
      sent_at: Date | null;
    }
  >(
    `SELECT id, type, subject, partition_key, created_at, sent_at, attempts, last_error
     FROM outbox ORDER BY seq DESC LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({
    ...r,
    created_at: new Date(r.created_at).toISOString(),
    sent_at: r.sent_at ? new Date(r.sent_at).toISOString() : null,
  }));
}
