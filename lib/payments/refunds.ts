import { isUnavailable } from "../db/db.ts";
import { ApiError, invalidState, notFound } from "../http/errors.ts";
import type { JsonText } from "../http/json-text.ts";
import { callProvider } from "../providers/call.ts";
import { ProviderError, type ProviderName, providerIdempotencyKey } from "../providers/provider.ts";
import { paymentColumns, refundColumns } from "./columns.ts";
import type { VerbContext } from "./context.ts";
import { newId } from "./ids.ts";
import { toProviderPayment } from "./provider-payment.ts";
import { recordChange } from "./records.ts";
import { type PaymentRow, type RefundObject, type RefundRow, refundObject } from "./serialize.ts";
import { invalidateStatusCache, readThrough } from "./status-cache.ts";

export interface CreateRefundInput {
  payment_id: string;
  amount?: number;
  reason?: "requested_by_customer" | "duplicate" | "fraudulent";
}

/**
 * Refunds part or all of a captured payment. The amount is reserved on the payment by one conditional update
 * (refunded + amount <= captured), so concurrent refunds can never exceed what was captured; the reservation is
 * released if the provider declines.
 */
export async function createRefund(ctx: VerbContext, input: CreateRefundInput): Promise<RefundObject> {
  const id = newId("re");
  const { refund, payment } = await ctx.db.transaction(async (tx) => {
    // The row lock is taken before the amount is computed, so "refund the rest" sees every earlier refund.
    const reserved = await tx.query<PaymentRow & { refund_amount: number }>(
      `WITH target AS (
         SELECT id, COALESCE($3, amount_captured - amount_refunded) AS refund_amount
         FROM payments WHERE id = $1 AND merchant_id = $2 FOR UPDATE
       )
       UPDATE payments p SET amount_refunded = p.amount_refunded + t.refund_amount, updated_at = now()
       FROM target t
       WHERE p.id = t.id AND p.status = 'succeeded' AND t.refund_amount > 0
         AND p.amount_refunded + t.refund_amount <= p.amount_captured
       RETURNING ${paymentColumns("p")}, t.refund_amount`,
      [input.payment_id, ctx.actor.merchantId, input.amount ?? null],
    );
    const payment = reserved.rows[0];
    if (!payment) {
      const current = await tx.query<PaymentRow>(
        `SELECT ${paymentColumns()} FROM payments WHERE id = $1 AND merchant_id = $2`,
        [input.payment_id, ctx.actor.merchantId],
      );
      const row = current.rows[0];
      if (!row) throw notFound("payment", "payment_id");
      if (row.status !== "succeeded")
        throw invalidState(`Payment is ${row.status}; only succeeded payments can be refunded.`);
      const left = row.amount_captured - row.amount_refunded;
      throw new ApiError("validation_failed", `Refund exceeds the ${left} left to refund.`, {
        errors: [{ path: "amount", message: `must be at most ${left}` }],
      });
    }
    const refundAmount = payment.refund_amount;
    const inserted = await tx.query<RefundRow>(
      `INSERT INTO refunds (id, merchant_id, payment_id, amount, currency, status, reason)
       VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING ${refundColumns()}`,
      [id, ctx.actor.merchantId, payment.id, refundAmount, payment.currency, input.reason ?? null],
    );
    await recordChange(tx, ctx, {
      objectType: "refund",
      objectId: id,
      action: "refund.create",
      statusBefore: null,
      statusAfter: "pending",
      amount: refundAmount,
      currency: payment.currency,
      partitionKey: payment.id,
    });
    return { refund: inserted.rows[0] as RefundRow, payment };
  });

  const provider = ctx.providers.get(payment.provider as ProviderName);
  let status: "succeeded" | "failed" | "pending" = "failed";
  try {
    if (!provider) throw new ProviderError(payment.provider as ProviderName, "provider not configured", true);
    status = await callProvider(provider.name, "refund", () =>
      provider.refund(
        toProviderPayment(payment),
        { refundId: id, amount: refund.amount },
        providerIdempotencyKey(id, "refund", 1),
      ),
    );
  } catch (error) {
    if (!(error instanceof ProviderError) || !error.definite) {
      // Unknown outcome: the refund stays pending for reconciliation; the reservation holds.
      ctx.log.warn(
        { refund_id: id, err: error instanceof Error ? error.message : error },
        "refund outcome unknown",
      );
      return refundObject(refund);
    }
    status = "failed";
  }
  if (status === "pending") return refundObject(refund);
  try {
    return refundObject(await settleRefund(ctx, refund, status));
  } catch (error) {
    // The reservation is committed and the provider has acted: a 5xx now would invite a retry that refunds again
    // (5xx answers are not stored). The refund stays pending and reconciliation settles it from the provider.
    if (!isUnavailable(error)) throw error;
    ctx.log.warn(
      { refund_id: id, err: (error as Error).message },
      "database lost before the refund was settled",
    );
    return refundObject(refund);
  }
}

export async function settleRefund(
  ctx: VerbContext,
  refund: RefundRow,
  status: "succeeded" | "failed",
): Promise<RefundRow> {
  const row = await ctx.db.transaction(async (tx) => {
    const updated = await tx.query<RefundRow>(
      `UPDATE refunds SET status = $2, failure = $3, updated_at = now() WHERE id = $1 AND status = 'pending' RETURNING ${refundColumns()}`,
      [
        refund.id,
        status,
        status === "failed"
          ? JSON.stringify({ code: "provider_error", message: "The provider declined the refund." })
          : null,
      ],
    );
    const settled = updated.rows[0];
    if (!settled) return refund;
    if (status === "succeeded") {
      await tx.query(
        `UPDATE orders o SET amount_refunded = o.amount_refunded + $2, updated_at = now()
         FROM payments p WHERE p.id = $1 AND o.id = p.order_id`,
        [refund.payment_id, refund.amount],
      );
    } else {
      await tx.query(
        "UPDATE payments SET amount_refunded = amount_refunded - $2, updated_at = now() WHERE id = $1",
        [refund.payment_id, refund.amount],
      );
    }
    await recordChange(tx, ctx, {
      objectType: "refund",
      objectId: refund.id,
      action: `refund.${status}`,
      statusBefore: "pending",
      statusAfter: status,
      amount: refund.amount,
      currency: refund.currency,
      event: `refund.${status}`,
      data: refundObject(settled),
      partitionKey: refund.payment_id,
    });
    return settled;
  });
  await invalidateStatusCache(ctx, "payment", refund.payment_id);
  await invalidateStatusCache(ctx, "refund", refund.id);
  ctx.onEventsWritten();
  return row;
}

export async function getRefund(ctx: VerbContext, id: string): Promise<JsonText> {
  const refund = await readThrough(ctx, "refund", id, async () => {
    const { rows } = await ctx.db.query<RefundRow>(
      `SELECT ${refundColumns()} FROM refunds WHERE id = $1 AND merchant_id = $2`,
      [id, ctx.actor.merchantId],
    );
    return rows[0] ? refundObject(rows[0]) : undefined;
  });
  if (!refund) throw notFound("refund");
  return refund;
}
