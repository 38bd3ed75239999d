import { invalidState, notFound } from "../http/errors.ts";
import { cancelAtProviderFirst } from "./cancel-at-provider.ts";
import type { VerbContext } from "./context.ts";
import { recordChange } from "./records.ts";
import { type PaymentObject, type PaymentRow, paymentObject } from "./serialize.ts";
import { countOutcome } from "./settle.ts";
import { invalidateStatusCache } from "./status-cache.ts";
import { voidAtProvider } from "./void.ts";

export type CancellationReason = "requested_by_customer" | "duplicate" | "fraudulent" | "abandoned";

/**
 * Cancels a payment that has not been charged. One waiting for its customer's 3-D Secure answer is canceled at the
 * provider first (cancel-at-provider.ts); an authorization is voided at the provider after.
 */
export async function cancelPayment(
  ctx: VerbContext,
  id: string,
  reason?: CancellationReason,
): Promise<PaymentObject> {
  const { rows: found } = await ctx.db.query<PaymentRow>(
    "SELECT * FROM payments WHERE id = $1 AND merchant_id = $2",
    [id, ctx.actor.merchantId],
  );
  const waiting = found[0];
  if (waiting?.status === "requires_action") {
    const answer = await cancelAtProviderFirst(ctx, waiting);
    if (answer.kind === "moved_on") throw invalidState(`Payment is ${answer.status} and cannot be canceled.`);
    if (answer.kind === "still_waiting") throw stillAuthenticating();
  }
  const payment = await ctx.db.transaction(async (tx) => {
    const { rows } = await tx.query<PaymentRow & { previous_status: string }>(
      `UPDATE payments p SET status = 'canceled', cancellation_reason = $3, next_action = NULL,
         amount_capturable = 0, updated_at = now()
       FROM (SELECT id, status AS previous_status FROM payments WHERE id = $1 AND merchant_id = $2 FOR UPDATE) old
       WHERE p.id = old.id AND p.status IN ('requires_confirmation', 'requires_action', 'requires_capture')
       RETURNING p.*, old.previous_status`,
      [id, ctx.actor.merchantId, reason ?? null],
    );
    const row = rows[0];
    if (!row) {
      const current = await tx.query<{ status: string }>(
        "SELECT status FROM payments WHERE id = $1 AND merchant_id = $2",
        [id, ctx.actor.merchantId],
      );
      if (!current.rows[0]) throw notFound("payment");
      throw invalidState(`Payment is ${current.rows[0].status} and cannot be canceled.`);
    }
    await recordChange(tx, ctx, {
      objectType: "payment",
      objectId: row.id,
      action: "payment.cancel",
      statusBefore: row.previous_status,
      statusAfter: "canceled",
      amount: row.amount,
      currency: row.currency,
      event: "payment.canceled",
      data: paymentObject(row),
    });
    return row;
  });
  await invalidateStatusCache(ctx, "payment", id);
  countOutcome(payment);
  ctx.onEventsWritten();
  if (payment.previous_status !== "requires_confirmation") await voidAtProvider(ctx, payment);
  return paymentObject(payment);
}

/** The provider keeps a payment open while its customer authenticates: it cannot be canceled yet. */
export const stillAuthenticating = () =>
  invalidState(
    "The provider cannot cancel this payment while its customer authenticates; it fails by itself if never completed.",
  );
