import type { Queryable } from "../db/db.ts";
import { invalidState, notFound } from "../http/errors.ts";
import { cancelAskingProvidersFirst, cancelAtProviderFirst } from "./cancel-at-provider.ts";
import { paymentColumns } from "./columns.ts";
import type { VerbContext } from "./context.ts";
import { recordChange } from "./records.ts";
import { type PaymentObject, type PaymentRow, paymentObject } from "./serialize.ts";
import { countOutcome } from "./settle.ts";
import { invalidateStatusCache } from "./status-cache.ts";
import { voidAtProvider } from "./void.ts";

export type CancellationReason = "requested_by_customer" | "duplicate" | "fraudulent" | "abandoned";

const OPEN = ["requires_confirmation", "requires_capture"] as const;

/**
 * Cancels a payment that has not been charged. One waiting for its customer's 3-D Secure answer is canceled at its
 * provider first (cancel-at-provider.ts) and only then here; an authorization is voided at the provider after.
 */
export async function cancelPayment(
  ctx: VerbContext,
  id: string,
  reason?: CancellationReason,
): Promise<PaymentObject> {
  const payment = await cancelAskingProvidersFirst(
    (canceledThere) => {
      const cancelable = canceledThere.length > 0 ? [...OPEN, "requires_action"] : [...OPEN];
      return ctx.db.transaction((tx) => cancelHere(tx, ctx, id, reason, cancelable));
    },
    () => cancelWaitingAtProvider(ctx, id),
    "Payment is requires_action and cannot be canceled right now; retry.",
  );
  await invalidateStatusCache(ctx, "payment", id);
  countOutcome(payment);
  ctx.onEventsWritten();
  if (payment.previous_status === "requires_capture") await voidAtProvider(ctx, payment);
  return paymentObject(payment);
}

/** The payment waits for 3-D Secure: its provider is asked first. The ids canceled there (this one, or none). */
async function cancelWaitingAtProvider(ctx: VerbContext, id: string): Promise<string[]> {
  const { rows } = await ctx.db.query<PaymentRow>(
    `SELECT ${paymentColumns()} FROM payments WHERE id = $1 AND merchant_id = $2`,
    [id, ctx.actor.merchantId],
  );
  const current = rows[0];
  if (!current) throw notFound("payment");
  if (current.status !== "requires_action") return []; // moved on meanwhile: the cancel decides again
  const answer = await cancelAtProviderFirst(ctx, current);
  if (answer.kind === "still_waiting") throw stillAuthenticating();
  if (answer.kind === "moved_on" && answer.status !== "requires_capture") {
    throw invalidState(`Payment is ${answer.status} and cannot be canceled.`);
  }
  return answer.kind === "canceled" ? [id] : [];
}

/**
 * Locks the payment and cancels it if it is in one of $4. The status is checked on the locked row (a CTE), never as
 * a condition on `payments`, for the reason given at settleStatement.
 */
export const CANCEL_STATEMENT = `WITH old AS (
    SELECT id, status AS previous_status FROM payments WHERE id = $1 AND merchant_id = $2 FOR UPDATE
  )
  UPDATE payments p SET status = 'canceled', cancellation_reason = $3, next_action = NULL,
    amount_capturable = 0, updated_at = now()
  FROM old
  WHERE p.id = $1 AND p.id = old.id AND old.previous_status = ANY($4::text[])
  RETURNING ${paymentColumns("p")}, old.previous_status`;

/** The cancel itself, from one of `cancelable`; "ask_provider" when the payment now waits for 3-D Secure. */
async function cancelHere(
  tx: Queryable,
  ctx: VerbContext,
  id: string,
  reason: CancellationReason | undefined,
  cancelable: string[],
): Promise<(PaymentRow & { previous_status: string }) | "ask_provider"> {
  const { rows } = await tx.query<PaymentRow & { previous_status: string }>(CANCEL_STATEMENT, [
    id,
    ctx.actor.merchantId,
    reason ?? null,
    cancelable,
  ]);
  const row = rows[0];
  if (!row) {
    const current = await tx.query<{ status: string }>(
      "SELECT status FROM payments WHERE id = $1 AND merchant_id = $2",
      [id, ctx.actor.merchantId],
    );
    const status = current.rows[0]?.status;
    if (!status) throw notFound("payment");
    if (status === "requires_action") return "ask_provider";
    throw invalidState(`Payment is ${status} and cannot be canceled.`);
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
}

/** The provider keeps a payment open while its customer authenticates: it cannot be canceled yet. */
export const stillAuthenticating = () =>
  invalidState(
    "The provider cannot cancel a payment while its customer authenticates (it fails by itself if never completed): retry later, with a new Idempotency-Key.",
  );
