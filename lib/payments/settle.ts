import type { Queryable } from "../db/db.ts";
import type { ProviderOutcome } from "../providers/provider.ts";
import { metrics } from "../telemetry/metrics.ts";
import { orderColumns, paymentColumns } from "./columns.ts";
import type { VerbContext } from "./context.ts";
import { type Currency, isCurrency, toMajorUnits } from "./money.ts";
import { orderObjectSql, paymentObjectSql } from "./object-sql.ts";
import { changeCtes, FromSource } from "./records.ts";
import type { PaymentRow } from "./serialize.ts";
import type { PaymentStatus } from "./state-machine.ts";
import { invalidateStatusCache } from "./status-cache.ts";

export interface SettleOptions {
  /** The settled payment is the request's answer (a confirm or capture), stored with it under an Idempotency-Key. */
  answersRequest?: boolean;
}

/** A provider's answer, or the revert to requires_confirmation when a provider definitely did not act. */
export type Settlement = ProviderOutcome | { status: "requires_confirmation" };

/**
 * Applies what a provider said about a payment (an API answer, a webhook, a 3-D Secure result or reconciliation),
 * only if the payment is still in one of `from` — so a late or repeated answer never moves a payment twice or out
 * of a terminal state. Returns the updated row, or undefined when the payment had already moved on.
 */
export async function settlePayment(
  ctx: VerbContext,
  paymentId: string,
  from: readonly PaymentStatus[],
  outcome: Settlement,
  action: string,
  options: SettleOptions = {},
): Promise<PaymentRow | undefined> {
  let storesAnswer = false;
  // One statement, atomic on its own: no transaction around it (BEGIN and COMMIT would be two more round trips).
  const row = await applySettlement(ctx.db, ctx, paymentId, from, outcome, action, {
    ...options,
    onAnswerStored: () => {
      storesAnswer = true;
    },
  });
  if (storesAnswer) ctx.actor.answerStored = true;
  if (row) await afterSettleCommit(ctx, row);
  return row;
}

/**
 * Settles a payment waiting for 3-D Secure (requires_action) with the provider's outcome. An authorization is
 * reached through processing, as the state machine (and the database) require: requires_action may not jump to
 * requires_capture. Returns the row after, or undefined when the payment was no longer in requires_action.
 */
export async function settleFromRequiresAction(
  tx: Queryable,
  ctx: VerbContext,
  paymentId: string,
  outcome: ProviderOutcome,
  action: string,
): Promise<PaymentRow | undefined> {
  if (outcome.status !== "requires_capture") {
    return applySettlement(tx, ctx, paymentId, ["requires_action"], outcome, action);
  }
  const processing = { status: "processing", providerPaymentId: outcome.providerPaymentId } as const;
  const moved = await applySettlement(tx, ctx, paymentId, ["requires_action"], processing, action);
  return moved && applySettlement(tx, ctx, paymentId, ["processing"], outcome, action);
}

/** What follows the commit of a payment applySettlement moved: caches, the dispatcher's wake-up, metrics. */
export async function afterSettleCommit(ctx: VerbContext, row: PaymentRow): Promise<void> {
  await invalidateStatusCache(ctx, "payment", row.id);
  if (row.status === "succeeded") await invalidateStatusCache(ctx, "order", row.order_id);
  ctx.onEventsWritten();
  countOutcome(row);
}

/**
 * The statement that settles a payment: it locks the order, then moves the payment, and `changes` (WITH-clauses
 * over `changed`: the moved payment when its status changed, with its API object) record the move in the same
 * statement. Every transaction that locks an order and one of its payments takes the order first (confirm, capture
 * and order cancel do), or a settle holding its payment while waiting for the order deadlocks with a confirm of a
 * sibling payment. The order's lock sits in the payment lock's condition, so it is taken before the payment row
 * is. The status is checked on the locked row (a CTE, which no condition is pushed into), never as a condition on
 * `payments` itself: the planner would then weigh the partial indexes on status, and while the statistics say few
 * payments have settled (a young table) it picks one and reads every settled payment on each settle.
 */
function settleStatement(changes: string): string {
  return `WITH locked_order AS (
    SELECT id FROM orders WHERE id = (SELECT order_id FROM payments WHERE id = $1) FOR UPDATE
  ), old AS (
    SELECT id, status AS previous_status FROM payments
    WHERE id = $1 AND EXISTS (SELECT 1 FROM locked_order) FOR UPDATE
  ), moved AS (
    UPDATE payments p SET
      status = $3,
      provider_payment_id = COALESCE($4, p.provider_payment_id),
      amount_captured = COALESCE($5, p.amount_captured),
      amount_capturable = COALESCE($6, p.amount_capturable),
      next_action = $7,
      failure = $8,
      processing_since = CASE WHEN $3 = 'processing' THEN COALESCE(p.processing_since, now()) ELSE NULL END,
      updated_at = now()
    FROM old
    WHERE p.id = $1 AND p.id = old.id AND old.previous_status = ANY($2::text[])
    RETURNING ${paymentColumns("p")}, old.previous_status
  ), changed AS (
    SELECT m.*, ${paymentObjectSql("m")} AS object FROM moved m WHERE m.previous_status <> m.status
  ), ${changes}
  SELECT ${paymentColumns()}, previous_status FROM moved`;
}

/**
 * The whole settle as one statement and its parameters: the move; when its status changed, its audit row and
 * event (and, for a confirm or capture, the request's answer); and for a success, the order's move to paid (if it
 * is still pending) with its own. The events carry the rows as the statement leaves them, built by PostgreSQL
 * (object-sql.ts); the order's waits for the payment's, so it comes after it in the outbox (seq order).
 */
export function settleQuery(
  ctx: Pick<VerbContext, "actor">,
  paymentId: string,
  from: readonly PaymentStatus[],
  outcome: Settlement,
  action: string,
  options: SettleOptions = {},
): { sql: string; values: unknown[]; storesAnswer: boolean } {
  const fields = outcomeFields(outcome);
  const moveValues = [
    paymentId,
    from,
    fields.status,
    fields.providerPaymentId ?? null,
    fields.amountCaptured ?? null,
    fields.amountCapturable ?? null,
    fields.nextAction ? JSON.stringify(fields.nextAction) : null,
    fields.failure ? JSON.stringify(fields.failure) : null,
  ];
  const paymentChange = changeCtes(
    ctx,
    {
      objectType: "payment",
      objectId: paymentId,
      action,
      statusBefore: new FromSource("changed.previous_status"),
      statusAfter: fields.status,
      amount: new FromSource(fields.status === "succeeded" ? "changed.amount_captured" : "changed.amount"),
      currency: new FromSource("changed.currency"),
      // Every status but the revert to requires_confirmation has a CloudEvent type.
      event: fields.status === "requires_confirmation" ? undefined : `payment.${fields.status}`,
      data: new FromSource("changed.object"),
      answersRequest: options.answersRequest,
    },
    "changed",
    moveValues.length + 1,
    { prefix: "payment_" },
  );
  const values = [...moveValues, ...paymentChange.values];
  let changes = paymentChange.sql;
  if (fields.status === "succeeded") {
    const orderChange = changeCtes(
      ctx,
      {
        objectType: "order",
        objectId: new FromSource("paid.id"),
        action: "order.paid",
        statusBefore: "pending",
        statusAfter: "paid",
        amount: new FromSource("paid.amount_paid"),
        currency: new FromSource("paid.currency"),
        event: "order.paid",
        data: new FromSource(orderObjectSql("paid")),
        partitionKey: paymentId,
      },
      "paid",
      values.length + 1,
      { prefix: "order_", recovery: false },
    );
    values.push(...orderChange.values);
    changes += `,
    paid AS (
      UPDATE orders SET status = 'paid', amount_paid = (SELECT amount_captured FROM changed), updated_at = now()
      WHERE id = (SELECT order_id FROM changed) AND status = 'pending'
        -- Waits for the payment's event, so the order's event comes after it in the outbox (seq order).
        AND (SELECT count(*) FROM payment_event) IS NOT NULL
      RETURNING ${orderColumns()}
    ), ${orderChange.sql}`;
  }
  return { sql: settleStatement(changes), values, storesAnswer: paymentChange.storesAnswer };
}

/**
 * Settles on `db`, a pool or the caller's transaction (a notification's, a 3-D Secure answer's, which locked the
 * order and the payment first). Returns the payment as moved, or undefined when it was not in one of `from`.
 */
export async function applySettlement(
  db: Queryable,
  ctx: VerbContext,
  paymentId: string,
  from: readonly PaymentStatus[],
  outcome: Settlement,
  action: string,
  options: SettleOptions & { onAnswerStored?: () => void } = {},
): Promise<PaymentRow | undefined> {
  const { sql, values, storesAnswer } = settleQuery(ctx, paymentId, from, outcome, action, options);
  const { rows } = await db.query<PaymentRow & { previous_status: PaymentStatus }>(sql, values);
  const moved = rows[0];
  if (!moved) return undefined;
  const { previous_status: previousStatus, ...payment } = moved;
  if (storesAnswer && previousStatus !== payment.status) options.onAnswerStored?.();
  return payment;
}

function outcomeFields(outcome: Settlement): {
  status: PaymentStatus;
  providerPaymentId?: string;
  amountCaptured?: number;
  amountCapturable?: number;
  nextAction?: unknown;
  failure?: unknown;
} {
  switch (outcome.status) {
    case "requires_confirmation":
      return { status: "requires_confirmation" };
    case "succeeded":
      return {
        status: "succeeded",
        providerPaymentId: outcome.providerPaymentId,
        amountCaptured: outcome.amountCaptured,
        amountCapturable: 0,
      };
    case "requires_capture":
      return {
        status: "requires_capture",
        providerPaymentId: outcome.providerPaymentId,
        amountCapturable: outcome.amountCapturable,
      };
    case "requires_action":
      return {
        status: "requires_action",
        providerPaymentId: outcome.providerPaymentId,
        nextAction: outcome.nextAction,
      };
    case "processing":
      return { status: "processing", providerPaymentId: outcome.providerPaymentId };
    case "failed":
      return {
        status: "failed",
        providerPaymentId: outcome.providerPaymentId,
        failure: outcome.failure,
        amountCapturable: 0,
      };
    case "canceled":
      return { status: "canceled", providerPaymentId: outcome.providerPaymentId, amountCapturable: 0 };
  }
}

export function countOutcome(row: PaymentRow): void {
  // A revert (the provider did not act) is not an outcome; the payment is where it started.
  if (row.status === "requires_confirmation") return;
  metrics.paymentsTotal.inc({ provider: row.provider, status: row.status, currency: row.currency });
  if (row.status === "succeeded" && isCurrency(row.currency)) {
    metrics.paymentAmount.observe(
      { currency: row.currency },
      toMajorUnits(row.amount_captured, row.currency as Currency),
    );
  }
}
