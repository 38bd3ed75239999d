import type { Queryable } from "../db/db.ts";
import type { VerbContext } from "./context.ts";
import { newId } from "./ids.ts";

export interface Change {
  objectType: "order" | "payment" | "refund";
  objectId: string | FromSource;
  action: string;
  statusBefore: string | null | FromSource;
  statusAfter: string | null;
  amount?: number | FromSource;
  currency?: string | FromSource;
  /** CloudEvent type suffix (e.g. "payment.succeeded"); omitted when the change announces nothing. */
  event?: string;
  /** The object as the API returns it: the event's data (a FromSource when the statement builds it). */
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
export async function recordChange(tx: Queryable, ctx: VerbContext, change: Plain<Change>): Promise<void> {
  const { sql, values } = changeCtes(ctx, change, "one", 1);
  await tx.query(`WITH one AS (SELECT 1), ${sql} SELECT 1`, values);
}

/** A change whose values all come from the code: recordChange's source is a row of nothing (`one`). */
type Plain<T> = { [K in keyof T]: Exclude<T[K], FromSource> };

export interface ChangeCteOptions {
  /** Put before the WITH-clause names, so two changes can share one statement. */
  prefix?: string;
  /** Whether the change names itself in the request's Idempotency-Key record (the first change of a request). */
  recovery?: boolean;
}

/**
 * SQL evaluated over each row of a change's `source`: for what only the statement knows, such as the row it
 * changes (its amount, or its API object built by paymentObjectSql).
 */
export class FromSource {
  constructor(readonly sql: string) {}
}

/**
 * The audit and outbox inserts of a change as WITH-clauses that insert once per row of the CTE `source`: appended
 * to the statement that makes the change, the whole write is one atomic statement, and when that statement
 * changes nothing (a condition did not hold) it records nothing either. Parameters are numbered from `first`.
 */
export function changeCtes(
  ctx: Pick<VerbContext, "actor">,
  change: Change,
  source: string,
  first: number,
  options: ChangeCteOptions = {},
): { sql: string; values: unknown[]; storesAnswer: boolean } {
  const { prefix = "", recovery = true } = options;
  const { actor } = ctx;
  const values: unknown[] = [];
  const param = (value: unknown, type: string) => {
    if (value instanceof FromSource) return `(${value.sql})::${type}`;
    values.push(value);
    return `$${first + values.length - 1}::${type}`;
  };
  // In the Idempotency-Key's update, which does not read `source` row by row: its one row, as a subquery.
  const fromOneRow = (value: unknown, type: string) =>
    value instanceof FromSource ? `(SELECT ${param(value, type)} FROM ${source})` : param(value, type);
  const eventId = param(change.event ? newId("evt") : null, "text");
  const objectId = param(change.objectId, "text");
  const merchantId = param(actor.merchantId, "text");
  const audit = `${prefix}audit AS (
       INSERT INTO audit_log (actor_type, actor_id, action, object_type, object_id, status_before, status_after, amount, currency, request_id)
       SELECT ${param(actor.type, "text")}, ${param(actor.type === "merchant" ? actor.merchantId : (actor.id ?? actor.source), "text")},
              ${param(change.action, "text")}, ${param(change.objectType, "text")}, ${objectId},
              ${param(change.statusBefore, "text")}, ${param(change.statusAfter, "text")},
              ${param(change.amount ?? null, "bigint")}, ${param(change.currency ?? null, "text")},
              ${param(actor.requestId, "text")} FROM ${source}
     )`;
  const data =
    change.data instanceof FromSource || change.data === undefined
      ? (change.data ?? null)
      : JSON.stringify(change.data);
  const event = `${prefix}event AS (
       INSERT INTO outbox (id, type, source, subject, partition_key, merchant_id, data, traceparent)
       SELECT ${eventId}, ${param(change.event ? `io.payment-service.${change.event}` : null, "text")},
              ${param(`/payment-service/${actor.source}`, "text")}, ${objectId},
              ${param(change.partitionKey ?? change.objectId, "text")}, ${merchantId}, ${param(data, "jsonb")},
              ${param(actor.traceparent ?? null, "text")} FROM ${source} WHERE ${eventId} IS NOT NULL
       RETURNING seq
     )`;
  const key = recovery ? actor.idempotencyKey : undefined;
  if (key === undefined) return { sql: `${audit},\n     ${event}`, values, storesAnswer: false };
  // The request's answer is this change's object: stored with it, the request needs no write of its own after.
  // Built by the statement, it is stored as PostgreSQL writes it; a replay sends it as the code writes JSON.
  const answerStatus = change.answersRequest ? actor.successStatus : undefined;
  const answerBody = change.data instanceof FromSource ? change.data : JSON.stringify(change.data);
  const answer =
    answerStatus === undefined
      ? ""
      : `, response_status = ${param(answerStatus, "int")}, response_body = ${fromOneRow(answerBody, "text")}, locked_until = NULL`;
  const recoveryPoint =
    change.objectId instanceof FromSource
      ? new FromSource(`'${change.objectType}:' || ${change.objectId.sql}`)
      : `${change.objectType}:${change.objectId}`;
  const recoveryCte = `${prefix}recovery AS (
       UPDATE idempotency_keys SET recovery_point = COALESCE(recovery_point, ${fromOneRow(recoveryPoint, "text")})${answer}
       WHERE merchant_id = ${merchantId} AND key = ${param(key, "text")} AND response_status IS NULL
         AND EXISTS (SELECT 1 FROM ${source})
     )`;
  return {
    sql: `${audit},\n     ${event},\n     ${recoveryCte}`,
    values,
    storesAnswer: answerStatus !== undefined,
  };
}
