import { ApiError, invalidState, notFound } from "../http/errors.ts";
import type { JsonText } from "../http/json-text.ts";
import type { ProviderName } from "../providers/provider.ts";
import { orderColumns, paymentColumns } from "./columns.ts";
import type { VerbContext } from "./context.ts";
import { newId } from "./ids.ts";
import { type ListParams, listPage } from "./list.ts";
import { changeCtes } from "./records.ts";
import {
  type Metadata,
  type OrderRow,
  type PaymentObject,
  type PaymentRow,
  paymentObject,
} from "./serialize.ts";
import type { PaymentStatus } from "./state-machine.ts";
import { readThrough } from "./status-cache.ts";

export interface CreatePaymentInput {
  order_id: string;
  payment_method: string;
  provider?: ProviderName;
  capture_method?: "automatic" | "manual";
  return_url?: string;
  description?: string;
  metadata?: Metadata;
}

/** Creates a payment for a pending order; amount and currency come from the order. */
export async function createPayment(ctx: VerbContext, input: CreatePaymentInput): Promise<PaymentObject> {
  const orders = await ctx.db.query<OrderRow>(
    `SELECT ${orderColumns()} FROM orders WHERE id = $1 AND merchant_id = $2`,
    [input.order_id, ctx.actor.merchantId],
  );
  const order = orders.rows[0];
  if (!order) {
    throw new ApiError("not_found", "No such order.", {
      errors: [{ path: "order_id", message: "No such order." }],
    });
  }
  if (order.status !== "pending")
    throw invalidState(`Order is ${order.status}; payments can only be added to a pending order.`);
  const provider = input.provider ?? ctx.providers.forCurrency(order.currency);
  if (!ctx.providers.get(provider)) {
    throw new ApiError("validation_failed", `Provider ${provider} is not configured.`, {
      errors: [{ path: "provider", message: "Provider is not configured." }],
    });
  }
  const now = ctx.clock();
  // Complete before the insert (amount and currency are the order's), so the event can carry it.
  const row: PaymentRow = {
    id: newId("pay"),
    merchant_id: ctx.actor.merchantId,
    order_id: order.id,
    amount: order.amount,
    currency: order.currency,
    status: "requires_confirmation",
    provider,
    provider_payment_id: null,
    payment_method: input.payment_method,
    capture_method: input.capture_method ?? "automatic",
    amount_capturable: 0,
    amount_captured: 0,
    amount_refunded: 0,
    next_action: null,
    failure: null,
    cancellation_reason: null,
    return_url: input.return_url ?? null,
    description: input.description ?? null,
    metadata: input.metadata ?? {},
    attempt: 0,
    processing_since: null,
    created_at: now,
    updated_at: now,
  };
  const payment = paymentObject(row);
  const change = changeCtes(
    ctx,
    {
      objectType: "payment",
      objectId: row.id,
      action: "payment.create",
      statusBefore: null,
      statusAfter: row.status,
      amount: row.amount,
      currency: row.currency,
      event: "payment.created",
      data: payment,
      answersRequest: true,
    },
    "created",
    13,
  );
  // One atomic statement; the order is re-checked inside it, so a concurrent cancel cannot slip between the
  // check above and this write, and when it did, nothing (not the audit row, not the event) is written.
  const { rowCount } = await ctx.db.query(
    `WITH created AS (
       INSERT INTO payments (id, merchant_id, order_id, amount, currency, provider, payment_method, capture_method,
                             return_url, description, metadata, created_at, updated_at)
       SELECT $1, $2, o.id, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12
       FROM orders o WHERE o.id = $3 AND o.merchant_id = $2 AND o.status = 'pending' AND o.amount = $4
       RETURNING id
     ), ${change.sql}
     SELECT id FROM created`,
    [
      row.id,
      row.merchant_id,
      row.order_id,
      row.amount,
      row.currency,
      provider,
      row.payment_method,
      row.capture_method,
      row.return_url,
      row.description,
      JSON.stringify(row.metadata),
      now,
      ...change.values,
    ],
  );
  if (rowCount === 0) throw invalidState("Order is no longer pending.");
  if (change.storesAnswer) ctx.actor.answerStored = true;
  ctx.onEventsWritten();
  return payment;
}

export async function getPayment(ctx: VerbContext, id: string): Promise<JsonText> {
  const payment = await readThrough(ctx, "payment", id, async () => {
    const row = await findPayment(ctx, id);
    return row ? paymentObject(row) : undefined;
  });
  if (!payment) throw notFound("payment");
  return payment;
}

export async function findPayment(ctx: VerbContext, id: string): Promise<PaymentRow | undefined> {
  const { rows } = await ctx.db.query<PaymentRow>(
    `SELECT ${paymentColumns()} FROM payments WHERE id = $1 AND merchant_id = $2`,
    [id, ctx.actor.merchantId],
  );
  return rows[0];
}

export function listPayments(
  ctx: VerbContext,
  params: ListParams & { status?: PaymentStatus; order_id?: string },
) {
  return listPage(
    ctx.db,
    "payments",
    { merchant_id: ctx.actor.merchantId, status: params.status, order_id: params.order_id },
    params,
    paymentObject,
  );
}
