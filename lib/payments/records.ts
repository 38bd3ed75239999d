import type { Queryable } from "../db/db.ts";
import type { VerbContext } from "./context.ts";
import { newId } from "./ids.ts";

export interface Change {
  objectType: "order" | "payment" | "refund";
  objectId: string;
  action: string;
  statusBefore: string | null;
  statusAfter: string | null;
  amount?: number;
  currency?: string;
  /** CloudEvent type suffix (e.g. "payment.succeeded"); omitted when the change announces nothing. */
  event?: string;
  /** The object as the API returns it: the event's data. */
  data?: unknown;
  /** Groups events that must be delivered in order (the payment or order id). */
  partitionKey?: string;
}

/**
 * Writes the audit row and the outbox event of one change, inside the caller's transaction: the change, its
 * audit entry and its announcement commit together or not at all. One statement for both keeps it one round trip.
 */
export async function recordChange(tx: Queryable, ctx: VerbContext, change: Change): Promise<void> {
  const { actor } = ctx;
  const eventId = change.event ? newId("evt") : null;
  await tx.query(
    `WITH audit AS (
       INSERT INTO audit_log (actor_type, actor_id, action, object_type, object_id, status_before, status_after, amount, currency, request_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     )
     INSERT INTO outbox (id, type, source, subject, partition_key, merchant_id, data, traceparent)
     SELECT $11::text, $12::text, $13::text, $5::text, $14::text, $15::text, $16::jsonb, $17::text WHERE $11::text IS NOT NULL`,
    [
      actor.type,
      actor.type === "merchant" ? actor.merchantId : actor.source,
      change.action,
      change.objectType,
      change.objectId,
      change.statusBefore,
      change.statusAfter,
      change.amount ?? null,
      change.currency ?? null,
      actor.requestId,
      eventId,
      change.event ? `io.payment-service.${change.event}` : null,
      `/payment-service/${actor.source}`,
      change.partitionKey ?? change.objectId,
      actor.merchantId,
      change.data === undefined ? null : JSON.stringify(change.data),
      actor.traceparent ?? null,
    ],
  );
}
