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
  /**
   * `data` is what the request answers (a create's new object, a confirm's settled payment): with an
   * Idempotency-Key, the key's record gets the answer in the change's own statement (see Actor.successStatus).
   */
  answersRequest?: boolean;
}

/**
 * Writes the audit row and the outbox event of one change, inside the caller's transaction: the change, its
 * audit entry and its announcement commit together or not at all. One statement for both keeps it one round trip.
 */
export async function recordChange(tx: Queryable, ctx: VerbContext, change: Change): Promise<void> {
  const { sql, values } = changeCtes(ctx, change, "one", 1);
  await tx.query(`WITH one AS (SELECT 1), ${sql} SELECT 1`, values);
}

export interface ChangeCteOptions {
  /** Put before the WITH-clause names, so two changes can share one statement. */
  prefix?: string;
  /** Whether the change names itself in the request's Idempotency-Key record (the first change of a request). */
  recovery?: boolean;
}

/**
 * The audit and outbox inserts of a change as WITH-clauses that insert once per row of the CTE `source`: appended
 * to the statement that makes the change, the whole write is one atomic statement, and when that statement
 * changes nothing (a condition did not hold) it records nothing either. Parameters are numbered from `first`.
 */
export function changeCtes(
  ctx: VerbContext,
  change: Change,
  source: string,
  first: number,
  options: ChangeCteOptions = {},
): { sql: string; values: unknown[]; storesAnswer: boolean } {
  const { prefix = "", recovery = true } = options;
  const { actor } = ctx;
  const eventId = change.event ? newId("evt") : null;
  const values = [
    actor.type,
    actor.type === "merchant" ? actor.merchantId : (actor.id ?? actor.source),
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
  ];
  const key = recovery ? actor.idempotencyKey : undefined;
  if (key !== undefined) values.push(key, `${change.objectType}:${change.objectId}`);
  // The request's answer is this change's object: stored with it, the request needs no write of its own after.
  const answerStatus = key !== undefined && change.answersRequest ? actor.successStatus : undefined;
  const answer = answerStatus !== undefined;
  if (answer) values.push(answerStatus, JSON.stringify(change.data));
  const p = (n: number) => `$${first + n - 1}`;
  const sql = `${prefix}audit AS (
       INSERT INTO audit_log (actor_type, actor_id, action, object_type, object_id, status_before, status_after, amount, currency, request_id)
       SELECT ${p(1)}::text, ${p(2)}::text, ${p(3)}::text, ${p(4)}::text, ${p(5)}::text, ${p(6)}::text, ${p(7)}::text,
              ${p(8)}::bigint, ${p(9)}::text, ${p(10)}::text FROM ${source}
     ),
     ${prefix}event AS (
       INSERT INTO outbox (id, type, source, subject, partition_key, merchant_id, data, traceparent)
       SELECT ${p(11)}::text, ${p(12)}::text, ${p(13)}::text, ${p(5)}::text, ${p(14)}::text, ${p(15)}::text, ${p(16)}::jsonb,
              ${p(17)}::text FROM ${source} WHERE ${p(11)}::text IS NOT NULL
       RETURNING seq
     )${
       key !== undefined
         ? `,
     ${prefix}recovery AS (
       UPDATE idempotency_keys SET recovery_point = COALESCE(recovery_point, ${p(19)}::text)${
         answer
           ? `, response_status = ${p(20)}::int, response_body = ${p(21)}::text, locked_until = NULL`
           : ""
       }
       WHERE merchant_id = ${p(15)}::text AND key = ${p(18)}::text AND response_status IS NULL
         AND EXISTS (SELECT 1 FROM ${source})
     )`
         : ""
     }`;
  return { sql, values, storesAnswer: answer };
}
