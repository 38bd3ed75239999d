import type { Queryable } from "../db/db.ts";
import type { DeliveryMeta, IgnoreReason } from "../events/provider-events.ts";
import { lastAppliedAt } from "../events/provider-events.ts";
import type { ProviderName, ProviderNotification, ProviderOutcome } from "../providers/provider.ts";
import { metrics } from "../telemetry/metrics.ts";
import { paymentColumns, refundColumns } from "./columns.ts";
import type { Actor, ServiceContext, VerbContext } from "./context.ts";
import { settleRefund } from "./refunds.ts";
import type { PaymentRow, RefundRow } from "./serialize.ts";
import { afterSettleCommit, applySettlement, settleFromRequiresAction } from "./settle.ts";
import { PAYMENT_STATUSES, PAYMENT_TRANSITIONS, type PaymentStatus } from "./state-machine.ts";

/** What a notification did, decided inside the transaction that stored it. */
export type NotificationEffect =
  | { status: "applied"; payment: PaymentRow; ctx: VerbContext }
  | { status: "ignored"; reason: IgnoreReason; paymentId?: string; refundId?: string }
  /** Its payment or refund is not known (yet): keep it, have it delivered again. */
  | { status: "pending" }
  /** A refund outcome to settle once the notification is stored (refunds settle in their own transaction). */
  | { status: "refund_due"; refund: RefundRow; outcome: "succeeded" | "failed"; ctx: VerbContext };

/**
 * The statuses a provider's word may move a payment from: every status whose transitions allow the outcome,
 * except requires_confirmation (the provider has not been asked about such a payment yet). Terminal statuses allow
 * nothing, so a notification never moves a terminal payment.
 */
export function notificationFrom(outcome: ProviderOutcome["status"]): PaymentStatus[] {
  return PAYMENT_STATUSES.filter(
    (s) => s !== "requires_confirmation" && PAYMENT_TRANSITIONS[s].includes(outcome),
  );
}

/**
 * Applies a verified notification through the same state machine as the API, inside the caller's transaction
 * (the one that stored the notification): the payment is locked, an event older than the last one applied to it
 * is recorded and ignored, and applySettlement moves it only from the statuses allowed, writing the audit
 * row (actor type "provider") and the outbox event.
 */
export async function applyNotification(
  tx: Queryable,
  service: ServiceContext,
  provider: ProviderName,
  n: ProviderNotification,
  meta: DeliveryMeta,
): Promise<NotificationEffect> {
  if (n.refund) return refundEffect(tx, service, provider, n, meta);
  const outcome = n.outcome;
  if (!outcome) return { status: "ignored", reason: "unhandled_type" };
  if (!n.paymentId && !n.providerPaymentId) return { status: "ignored", reason: "no_reference" };

  const payment = await lockPayment(tx, provider, n);
  if (!payment) return { status: "pending" };
  const ignored = (reason: IgnoreReason): NotificationEffect => ({
    status: "ignored",
    reason,
    paymentId: payment.id,
  });
  // Another provider's payment, or another payment at this provider: a provider speaks only of its own.
  if (
    payment.provider !== provider ||
    (n.providerPaymentId &&
      payment.provider_payment_id &&
      n.providerPaymentId !== payment.provider_payment_id)
  ) {
    return ignored("mismatch");
  }
  // Providers report only on payments they were asked about; one we have not sent yet means the notification
  // overtook our own commit (or came before the payment was created here). Keep it until the payment catches up.
  if (payment.status === "requires_confirmation") return { status: "pending" };
  const last = await lastAppliedAt(tx, provider, payment.id);
  if (last && n.occurredAt.getTime() < last.getTime()) return ignored("stale");
  const ctx = notificationContext(service, payment.merchant_id, provider, meta);
  const action = `payment.webhook.${outcome.status}`;
  // An authorization of a payment waiting for 3-D Secure is reached through processing (settleFromRequiresAction).
  if (payment.status === "requires_action" && outcome.status === "requires_capture") {
    const settled = await settleFromRequiresAction(tx, ctx, payment.id, outcome, action);
    return settled ? { status: "applied", payment: settled, ctx } : ignored("not_applicable");
  }
  const from = notificationFrom(outcome.status);
  if (!from.includes(payment.status)) {
    // A terminal payment never moves, so a charge reported for one canceled here is money taken for nothing.
    if (payment.status === "canceled" && outcome.status === "succeeded") {
      metrics.providerDiscrepancies.inc({ provider, kind: "charged_after_cancel" });
      service.log.error(
        { payment_id: payment.id, provider, event_id: n.eventId, outcome: outcome.status },
        "provider reports a charge of a payment canceled here: refund it at the provider",
      );
    }
    return ignored("not_applicable");
  }

  const settled = await applySettlement(tx, ctx, payment.id, from, outcome, action);
  if (!settled) return ignored("not_applicable");
  return { status: "applied", payment: settled, ctx };
}

/** After the commit: what settlePayment does after its own commit (caches, dispatcher wake-up, metrics). */
export async function afterNotificationCommit(effect: NotificationEffect): Promise<void> {
  if (effect.status === "applied") await afterSettleCommit(effect.ctx, effect.payment);
}

/**
 * Settles a refund a notification reported, in the refund's own transaction (settleRefund). True when this call
 * moved it; false when it had been settled meanwhile (settleRefund then hands back the row it was given).
 */
export async function settleNotifiedRefund(effect: Extract<NotificationEffect, { status: "refund_due" }>) {
  const settled = await settleRefund(effect.ctx, effect.refund, effect.outcome);
  return settled !== effect.refund;
}

/** The payment a notification names, locked: by our id when the provider echoes it, else by the provider's id. */
async function lockPayment(
  tx: Queryable,
  provider: ProviderName,
  n: ProviderNotification,
): Promise<PaymentRow | undefined> {
  // The order before the payment, as in every transaction locking both (see settleStatement).
  await (n.paymentId
    ? tx.query("SELECT 1 FROM orders WHERE id IN (SELECT order_id FROM payments WHERE id = $1) FOR UPDATE", [
        n.paymentId,
      ])
    : tx.query(
        `SELECT 1 FROM orders WHERE id IN
           (SELECT order_id FROM payments WHERE provider = $1 AND provider_payment_id = $2) FOR UPDATE`,
        [provider, n.providerPaymentId],
      ));
  const { rows } = n.paymentId
    ? await tx.query<PaymentRow>(`SELECT ${paymentColumns()} FROM payments WHERE id = $1 FOR UPDATE`, [
        n.paymentId,
      ])
    : await tx.query<PaymentRow>(
        `SELECT ${paymentColumns()} FROM payments WHERE provider = $1 AND provider_payment_id = $2 FOR UPDATE`,
        [provider, n.providerPaymentId],
      );
  return rows[0];
}

async function refundEffect(
  tx: Queryable,
  service: ServiceContext,
  provider: ProviderName,
  n: ProviderNotification,
  meta: DeliveryMeta,
): Promise<NotificationEffect> {
  const refundId = n.refund?.refundId;
  if (!n.refund || !refundId) return { status: "ignored", reason: "no_reference" };
  const { rows } = await tx.query<RefundRow>(
    `SELECT ${refundColumns("r")} FROM refunds r JOIN payments p ON p.id = r.payment_id
     WHERE r.id = $1 AND p.provider = $2 FOR UPDATE OF r`,
    [refundId, provider],
  );
  const refund = rows[0];
  if (!refund) return { status: "pending" };
  if (refund.status !== "pending") {
    return { status: "ignored", reason: "not_applicable", paymentId: refund.payment_id, refundId };
  }
  const ctx = notificationContext(service, refund.merchant_id, provider, meta);
  return { status: "refund_due", refund, outcome: n.refund.status, ctx };
}

/** A provider acting on a merchant's payment: the audit trail records actor type "provider". */
function notificationContext(
  service: ServiceContext,
  merchantId: string,
  provider: ProviderName,
  meta: DeliveryMeta,
): VerbContext {
  const actor: Actor = {
    merchantId,
    requestId: meta.requestId,
    traceparent: meta.traceparent,
    type: "provider",
    id: provider,
    source: "webhook",
  };
  return { ...service, actor };
}
