import type { Queryable } from "../db/db.ts";
import type { ProviderName, ProviderNotification } from "../providers/provider.ts";

export type ProviderEventStatus = "pending" | "applied" | "ignored";
export type IgnoreReason =
  | "unhandled_type"
  | "stale"
  | "not_applicable"
  | "mismatch"
  | "no_reference"
  | "expired";

/** Where a notification came from: the delivery that brought it (its request id and trace). */
export interface DeliveryMeta {
  requestId: string;
  traceparent?: string;
}

export interface StoredEvent {
  provider: ProviderName;
  notification: ProviderNotification;
  meta: DeliveryMeta;
}

/**
 * Stores a verified notification, or — when (provider, event id) is already there — counts the delivery and locks
 * the existing row, so concurrent deliveries of one event take turns. `fresh` says which happened; `status` is the
 * row's status as this transaction sees it (pending rows are retried, decided ones are duplicates).
 */
export async function storeProviderEvent(
  tx: Queryable,
  provider: ProviderName,
  n: ProviderNotification,
  meta: DeliveryMeta,
): Promise<{ fresh: boolean; status: ProviderEventStatus }> {
  const { rows } = await tx.query<{ fresh: boolean; status: ProviderEventStatus }>(
    `INSERT INTO provider_events (provider, event_id, type, payment_id, provider_payment_id, refund_id, occurred_at,
                                  notification, request_id, traceparent)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (provider, event_id) DO UPDATE SET
       deliveries = provider_events.deliveries + 1,
       last_received_at = now(),
       -- A pending event is applied on behalf of its latest delivery; a decided one keeps the one that decided it.
       request_id = CASE WHEN provider_events.status = 'pending' THEN EXCLUDED.request_id ELSE provider_events.request_id END,
       traceparent = CASE WHEN provider_events.status = 'pending' THEN EXCLUDED.traceparent ELSE provider_events.traceparent END
     RETURNING (xmax = 0) AS fresh, status`,
    [
      provider,
      n.eventId,
      n.type,
      n.paymentId ?? null,
      n.providerPaymentId ?? null,
      n.refund?.refundId ?? null,
      n.occurredAt,
      JSON.stringify(serializeNotification(n)),
      meta.requestId,
      meta.traceparent ?? null,
    ],
  );
  const row = rows[0];
  if (!row) throw new Error("provider event upsert returned nothing");
  return row;
}

export interface Decision {
  status: ProviderEventStatus;
  reason?: IgnoreReason;
  paymentId?: string;
  refundId?: string;
}

/** Records what became of a notification; a decided one never changes again (trigger in migration 002). */
export async function recordDecision(
  tx: Queryable,
  provider: ProviderName,
  eventId: string,
  decision: Decision,
): Promise<void> {
  if (decision.status === "pending") return;
  await tx.query(
    `UPDATE provider_events SET status = $3, reason = $4, payment_id = COALESCE($5, payment_id),
       refund_id = COALESCE($6, refund_id), decided_at = now()
     WHERE provider = $1 AND event_id = $2 AND status = 'pending'`,
    [
      provider,
      eventId,
      decision.status,
      decision.reason ?? null,
      decision.paymentId ?? null,
      decision.refundId ?? null,
    ],
  );
}

/** The newest occurrence among notifications already applied to this payment (ordering guard). */
export async function lastAppliedAt(
  tx: Queryable,
  provider: ProviderName,
  paymentId: string,
): Promise<Date | undefined> {
  const { rows } = await tx.query<{ last: Date | null }>(
    "SELECT max(occurred_at) AS last FROM provider_events WHERE provider = $1 AND payment_id = $2 AND status = 'applied'",
    [provider, paymentId],
  );
  const last = rows[0]?.last;
  return last ? new Date(last) : undefined;
}

/** Pending events in the order they happened, oldest first (the sweep applies them in that order). */
export async function listPendingEvents(
  db: Queryable,
  limit: number,
): Promise<{ provider: ProviderName; event_id: string }[]> {
  const { rows } = await db.query<{ provider: ProviderName; event_id: string }>(
    "SELECT provider, event_id FROM provider_events WHERE status = 'pending' ORDER BY occurred_at, event_id LIMIT $1",
    [limit],
  );
  return rows;
}

/** Locks one pending event for the sweep; undefined when someone else holds it or it was decided meanwhile. */
export async function lockPendingEvent(
  tx: Queryable,
  provider: ProviderName,
  eventId: string,
): Promise<StoredEvent | undefined> {
  const { rows } = await tx.query<{
    notification: SerializedNotification;
    request_id: string | null;
    traceparent: string | null;
  }>(
    `SELECT notification, request_id, traceparent FROM provider_events
     WHERE provider = $1 AND event_id = $2 AND status = 'pending' FOR UPDATE SKIP LOCKED`,
    [provider, eventId],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    provider,
    notification: deserializeNotification(row.notification),
    meta: { requestId: row.request_id ?? `sweep-${eventId}`, traceparent: row.traceparent ?? undefined },
  };
}

/**
 * Gives up on events still pending after `maxAgeSeconds`: their payment never appeared (a payment made outside
 * this service on the same provider account, say). They stay recorded, as ignored/expired.
 */
export async function expirePendingEvents(db: Queryable, maxAgeSeconds: number): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE provider_events SET status = 'ignored', reason = 'expired', decided_at = now()
     WHERE status = 'pending' AND received_at < now() - make_interval(secs => $1)`,
    [maxAgeSeconds],
  );
  return rowCount;
}

type SerializedNotification = Omit<ProviderNotification, "occurredAt"> & { occurredAt: string };

function serializeNotification(n: ProviderNotification): SerializedNotification {
  return { ...n, occurredAt: n.occurredAt.toISOString() };
}

function deserializeNotification(s: SerializedNotification): ProviderNotification {
  return { ...s, occurredAt: new Date(s.occurredAt) };
}
