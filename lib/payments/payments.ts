import { ApiError, invalidState, notFound } from "../http/errors.ts";
import type { ProviderName } from "../providers/provider.ts";
import type { VerbContext } from "./context.ts";
import { newId } from "./ids.ts";
import { type ListParams, listPage } from "./list.ts";
import { recordChange } from "./records.ts";
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
  const orders = await ctx.db.query<OrderRow>("SELECT * FROM orders WHERE id = $1 AND merchant_id = $2", [
    input.order_id,
    ctx.actor.merchantId,
  ]);
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
  const id = newId("pay");
  const payment = await ctx.db.transaction(async (tx) => {
    // The order is re-checked inside the insert so a concurrent cancel cannot slip between check and write.
    const { rows } = await tx.query<PaymentRow>(
      `INSERT INTO payments (id, merchant_id, order_id, amount, currency, provider, payment_method, capture_method,
                             return_url, description, metadata)
       SELECT $1, $2, o.id, o.amount, o.currency, $4, $5, $6, $7, $8, $9
       FROM orders o WHERE o.id = $3 AND o.merchant_id = $2 AND o.status = 'pending'
       RETURNING *`,
      [
        id,
        ctx.actor.merchantId,
        input.order_id,
        provider,
        input.payment_method,
        input.capture_method ?? "automatic",
        input.return_url ?? null,
        input.description ?? null,
        JSON.stringify(input.metadata ?? {}),
      ],
    );
    const row = rows[0];
    if (!row) throw invalidState("Order is no longer pending.");
    const object = paymentObject(row);
    await recordChange(tx, ctx, {
      objectType: "payment",
      objectId: id,
      action: "payment.create",
      statusBefore: null,
      statusAfter: row.status,
      amount: row.amount,
      currency: row.currency,
      event: "payment.created",
      data: object,
    });
    return object;
  });
  ctx.onEventsWritten();
  return payment;
}

export async function getPayment(ctx: VerbContext, id: string): Promise<PaymentObject> {
  const payment = await readThrough(ctx, "payment", id, async () => {
    const row = await findPayment(ctx, id);
    return row ? paymentObject(row) : undefined;
  });
  if (!payment) throw notFound("payment");
  return payment;
}

export async function findPayment(ctx: VerbContext, id: string): Promise<PaymentRow | undefined> {
  const { rows } = await ctx.db.query<PaymentRow>(
    "SELECT * FROM payments WHERE id = $1 AND merchant_id = $2",
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
