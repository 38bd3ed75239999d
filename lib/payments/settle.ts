import type { Queryable } from "../db/db.ts";
import type { ProviderOutcome } from "../providers/provider.ts";
import { metrics } from "../telemetry/metrics.ts";
import type { VerbContext } from "./context.ts";
import { type Currency, isCurrency, toMajorUnits } from "./money.ts";
import { recordChange } from "./records.ts";
import { type OrderRow, orderObject, type PaymentRow, paymentObject } from "./serialize.ts";
import type { PaymentStatus } from "./state-machine.ts";
import { invalidateStatusCache } from "./status-cache.ts";

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
): Promise<PaymentRow | undefined> {
  const row = await ctx.db.transaction((tx) =>
    settleInTransaction(tx, ctx, paymentId, from, outcome, action),
  );
  if (row) {
    await invalidateStatusCache(ctx, "payment", row.id);
    if (row.status === "succeeded") await invalidateStatusCache(ctx, "order", row.order_id);
    ctx.onEventsWritten();
    countOutcome(row);
  }
  return row;
}

export async function settleInTransaction(
  tx: Queryable,
  ctx: VerbContext,
  paymentId: string,
  from: readonly PaymentStatus[],
  outcome: Settlement,
  action: string,
): Promise<PaymentRow | undefined> {
  const fields = outcomeFields(outcome);
  // Every transaction that locks an order and one of its payments takes the order first (confirm, capture and
  // order cancel do): a settle that held its payment while waiting for the order deadlocked with a confirm of a
  // sibling payment, which holds the order and waits on this payment's entry in the one-active-per-order index.
  await tx.query("SELECT 1 FROM orders WHERE id = (SELECT order_id FROM payments WHERE id = $1) FOR UPDATE", [
    paymentId,
  ]);
  const { rows } = await tx.query<PaymentRow & { previous_status: PaymentStatus }>(
    `UPDATE payments p SET
       status = $3,
       provider_payment_id = COALESCE($4, p.provider_payment_id),
       amount_captured = COALESCE($5, p.amount_captured),
       amount_capturable = COALESCE($6, p.amount_capturable),
       next_action = $7,
       failure = $8,
       processing_since = CASE WHEN $3 = 'processing' THEN COALESCE(p.processing_since, now()) ELSE NULL END,
       updated_at = now()
     FROM (SELECT id, status AS previous_status FROM payments WHERE id = $1 FOR UPDATE) old
     WHERE p.id = old.id AND p.status = ANY($2::text[])
     RETURNING p.*, old.previous_status`,
    [
      paymentId,
      from,
      fields.status,
      fields.providerPaymentId ?? null,
      fields.amountCaptured ?? null,
      fields.amountCapturable ?? null,
      fields.nextAction ? JSON.stringify(fields.nextAction) : null,
      fields.failure ? JSON.stringify(fields.failure) : null,
    ],
  );
  const payment = rows[0];
  if (!payment) return undefined;
  if (payment.previous_status !== payment.status) {
    await recordChange(tx, ctx, {
      objectType: "payment",
      objectId: payment.id,
      action,
      statusBefore: payment.previous_status,
      statusAfter: payment.status,
      amount: payment.status === "succeeded" ? payment.amount_captured : payment.amount,
      currency: payment.currency,
      // Every status but the revert to requires_confirmation has a CloudEvent type.
      event: payment.status === "requires_confirmation" ? undefined : `payment.${payment.status}`,
      data: paymentObject(payment),
    });
  }
  if (payment.status === "succeeded" && payment.previous_status !== "succeeded") {
    const orders = await tx.query<OrderRow>(
      `UPDATE orders SET status = 'paid', amount_paid = $2, updated_at = now()
       WHERE id = $1 AND status = 'pending' RETURNING *`,
      [payment.order_id, payment.amount_captured],
    );
    const order = orders.rows[0];
    if (order) {
      await recordChange(tx, ctx, {
        objectType: "order",
        objectId: order.id,
        action: "order.paid",
        statusBefore: "pending",
        statusAfter: "paid",
        amount: order.amount_paid,
        currency: order.currency,
        event: "order.paid",
        data: orderObject(order),
        partitionKey: payment.id,
      });
    }
  }
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
