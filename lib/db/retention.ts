import type { Db } from "./db.ts";

// Rows per statement: each batch is its own short statement, so pruning never holds many locks or a long
// transaction beside live traffic.
const BATCH_ROWS = 5_000;
// Rows per run at most; what is left goes at the next run (the reconciliation PingSource calls every 5 minutes).
const MAX_ROWS_PER_RUN = 100_000;

export interface Pruned {
  outbox: number;
  idempotency_keys: number;
  provider_events: number;
}

export interface Retention {
  /** How long a sent event stays in the outbox, to inspect or resend by hand. */
  outboxHours: number;
  /**
   * How long a decided provider notification is kept: its id is what recognises the provider's retries (Stripe
   * retries for 3 days, YooKassa for 24 hours), and its time orders later notifications of the same payment.
   */
  providerEventDays: number;
}

/**
 * Deletes what is kept only for a while: outbox events sent longer ago than their retention, Idempotency-Key
 * records past their expiry (a request reusing such a key starts afresh anyway) and provider notifications decided
 * longer ago than theirs, unless their payment can still move. Unsent events, pending notifications and audit rows
 * are never touched here.
 */
export async function pruneExpired(db: Db, retention: Retention): Promise<Pruned> {
  const idempotencyKeys = await inBatches(
    db,
    // A record a request is renewing right now is skipped; the expiry is checked again on the locked row.
    `DELETE FROM idempotency_keys WHERE (merchant_id, key) IN (
       SELECT merchant_id, key FROM idempotency_keys WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED
     ) AND expires_at < now()`,
    [],
  );
  const outbox = await inBatches(
    db,
    // Checked again on the locked row: an event set unsent again (to resend it by hand) stays.
    `DELETE FROM outbox WHERE seq IN (
       SELECT seq FROM outbox WHERE sent_at < now() - make_interval(hours => $1) ORDER BY sent_at LIMIT $2
       FOR UPDATE SKIP LOCKED
     ) AND sent_at < now() - make_interval(hours => $1)`,
    [retention.outboxHours],
  );
  const providerEvents = await inBatches(
    db,
    // Decided is final (a trigger keeps it so): nothing can make a row pending again between the two checks. A
    // payment that can still move keeps its notifications: the newest applied one is what marks an older one stale.
    // Terminal payments never move again, so theirs can go.
    `DELETE FROM provider_events WHERE (provider, event_id) IN (
       SELECT e.provider, e.event_id FROM provider_events e
       WHERE e.status <> 'pending' AND e.decided_at < now() - make_interval(days => $1)
         AND NOT EXISTS (SELECT FROM payments p
                         WHERE p.id = e.payment_id AND p.status NOT IN ('succeeded', 'failed', 'canceled'))
       ORDER BY e.decided_at LIMIT $2 FOR UPDATE OF e SKIP LOCKED
     )`,
    [retention.providerEventDays],
  );
  return { outbox, idempotency_keys: idempotencyKeys, provider_events: providerEvents };
}

async function inBatches(db: Db, sql: string, params: unknown[]): Promise<number> {
  let deleted = 0;
  while (deleted < MAX_ROWS_PER_RUN) {
    const { rowCount } = await db.query(sql, [...params, BATCH_ROWS]);
    deleted += rowCount;
    if (rowCount < BATCH_ROWS) break;
  }
  return deleted;
}
