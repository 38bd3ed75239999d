import type { Queryable } from "../db/db.ts";
import { invalidState, notFound } from "../http/errors.ts";
import type { JsonText } from "../http/json-text.ts";
import { stillAuthenticating } from "./cancel.ts";
import { cancelAskingProvidersFirst, cancelAtProviderFirst } from "./cancel-at-provider.ts";
import { orderColumns, paymentColumns } from "./columns.ts";
import type { VerbContext } from "./context.ts";
import { newId } from "./ids.ts";
import { type ListParams, listPage } from "./list.ts";
import type { Currency } from "./money.ts";
import { changeCtes, recordChange } from "./records.ts";
import {
  type Metadata,
  type OrderObject,
  type OrderRow,
  orderObject,
  type PaymentRow,
  paymentObject,
} from "./serialize.ts";
import { countOutcome } from "./settle.ts";
import type { OrderStatus } from "./state-machine.ts";
import { invalidateStatusCache, readThrough } from "./status-cache.ts";
import { voidAtProvider } from "./void.ts";

export interface CreateOrderInput {
  amount: number;
  currency: Currency;
  description?: string;
  metadata?: Metadata;
}

/**
 * One statement writes the order, its audit row and its event: atomic without BEGIN/COMMIT, one round trip. The
 * object is complete before the insert (the timestamps come from the service clock), so the event carries it.
 */
export async function createOrder(ctx: VerbContext, input: CreateOrderInput): Promise<OrderObject> {
  const now = ctx.clock();
  const order = orderObject({
    id: newId("ord"),
    merchant_id: ctx.actor.merchantId,
    amount: input.amount,
    currency: input.currency,
    status: "pending",
    description: input.description ?? null,
    metadata: input.metadata ?? {},
    amount_paid: 0,
    amount_refunded: 0,
    created_at: now,
    updated_at: now,
  });
  const change = changeCtes(
    ctx,
    {
      objectType: "order",
      objectId: order.id,
      action: "order.create",
      statusBefore: null,
      statusAfter: "pending",
      amount: input.amount,
      currency: input.currency,
      event: "order.created",
      data: order,
      answersRequest: true,
    },
    "created",
    8,
  );
  await ctx.db.query(
    `WITH created AS (
       INSERT INTO orders (id, merchant_id, amount, currency, description, metadata, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id
     ), ${change.sql}
     SELECT id FROM created`,
    [
      order.id,
      ctx.actor.merchantId,
      input.amount,
      input.currency,
      order.description,
      JSON.stringify(order.metadata),
      now,
      ...change.values,
    ],
  );
  if (change.storesAnswer) ctx.actor.answerStored = true;
  ctx.onEventsWritten();
  return order;
}

export async function getOrder(ctx: VerbContext, id: string): Promise<JsonText> {
  const order = await readThrough(ctx, "order", id, async () => {
    const { rows } = await ctx.db.query<OrderRow>(
      `SELECT ${orderColumns()} FROM orders WHERE id = $1 AND merchant_id = $2`,
      [id, ctx.actor.merchantId],
    );
    return rows[0] ? orderObject(rows[0]) : undefined;
  });
  if (!order) throw notFound("order");
  return order;
}

export function listOrders(ctx: VerbContext, params: ListParams & { status?: OrderStatus }) {
  return listPage(
    ctx.db,
    "orders",
    { merchant_id: ctx.actor.merchantId, status: params.status },
    params,
    orderObject,
  );
}

/**
 * Cancels a pending order and its open payments. An order with a payment in flight or paid cannot be canceled.
 * Its payments waiting for a 3-D Secure answer are canceled at their provider first (cancel-at-provider.ts): one
 * the customer completed meanwhile is applied, and the order's own checks below then refuse the cancel.
 */
export async function cancelOrder(ctx: VerbContext, id: string): Promise<OrderObject> {
  const { order, voided } = await cancelAskingProvidersFirst(
    (canceledThere) => ctx.db.transaction((tx) => cancelOrderHere(tx, ctx, id, canceledThere)),
    async () => {
      // At most one: an order has at most one payment in flight (payments_one_active_per_order).
      const { rows: waiting } = await ctx.db.query<PaymentRow>(
        `SELECT ${paymentColumns("p")} FROM payments p JOIN orders o ON o.id = p.order_id
         WHERE p.order_id = $1 AND o.merchant_id = $2 AND o.status = 'pending' AND p.status = 'requires_action'`,
        [id, ctx.actor.merchantId],
      );
      const canceledThere: string[] = [];
      for (const payment of waiting) {
        const answer = await cancelAtProviderFirst(ctx, payment);
        if (answer.kind === "still_waiting") throw stillAuthenticating();
        if (answer.kind === "canceled") canceledThere.push(payment.id);
      }
      return canceledThere;
    },
    "Order has a requires_action payment and cannot be canceled right now; retry.",
  );
  await invalidateStatusCache(ctx, "order", id);
  for (const payment of voided) {
    await invalidateStatusCache(ctx, "payment", payment.id);
    countOutcome(payment);
  }
  ctx.onEventsWritten();
  for (const payment of voided) {
    if (payment.previous_status === "requires_capture") await voidAtProvider(ctx, payment);
  }
  return order;
}

/**
 * The order's cancel itself, with its open payments; "ask_provider" when one of them waits for 3-D Secure and was
 * not canceled at its provider by this request (`canceledThere`).
 */
async function cancelOrderHere(
  tx: Queryable,
  ctx: VerbContext,
  id: string,
  canceledThere: string[],
): Promise<{ order: OrderObject; voided: (PaymentRow & { previous_status: string })[] } | "ask_provider"> {
  // Locking the order serializes this with confirms of its payments, which lock it too.
  const locked = await tx.query<OrderRow>(
    `SELECT ${orderColumns()} FROM orders WHERE id = $1 AND merchant_id = $2 FOR UPDATE`,
    [id, ctx.actor.merchantId],
  );
  const current = locked.rows[0];
  if (!current) throw notFound("order");
  if (current.status !== "pending") throw invalidState(`Order is ${current.status} and cannot be canceled.`);
  const busy = await tx.query<{ status: string }>(
    "SELECT status FROM payments WHERE order_id = $1 AND status IN ('processing', 'succeeded') LIMIT 1",
    [id],
  );
  if (busy.rows[0]) throw invalidState(`Order has a ${busy.rows[0].status} payment and cannot be canceled.`);
  const unasked = await tx.query(
    "SELECT 1 FROM payments WHERE order_id = $1 AND status = 'requires_action' AND id <> ALL($2::text[])",
    [id, canceledThere],
  );
  if (unasked.rows.length > 0) return "ask_provider";

  const canceledPayments = await tx.query<PaymentRow & { previous_status: string }>(
    `UPDATE payments p SET status = 'canceled', cancellation_reason = 'abandoned', next_action = NULL,
         amount_capturable = 0, updated_at = now()
       FROM (SELECT id, status AS previous_status FROM payments
             WHERE order_id = $1 AND status IN ('requires_confirmation', 'requires_action', 'requires_capture')
             FOR UPDATE) old
       WHERE p.id = old.id AND p.status IN ('requires_confirmation', 'requires_action', 'requires_capture')
       RETURNING ${paymentColumns("p")}, old.previous_status`,
    [id],
  );
  for (const payment of canceledPayments.rows) {
    await recordChange(tx, ctx, {
      objectType: "payment",
      objectId: payment.id,
      action: "payment.cancel",
      statusBefore: payment.previous_status,
      statusAfter: "canceled",
      amount: payment.amount,
      currency: payment.currency,
      event: "payment.canceled",
      data: paymentObject(payment),
    });
  }
  const updated = await tx.query<OrderRow>(
    `UPDATE orders SET status = 'canceled', updated_at = now() WHERE id = $1 RETURNING ${orderColumns()}`,
    [id],
  );
  const order = orderObject(updated.rows[0] as OrderRow);
  await recordChange(tx, ctx, {
    objectType: "order",
    objectId: id,
    action: "order.cancel",
    statusBefore: "pending",
    statusAfter: "canceled",
    amount: order.amount,
    currency: order.currency,
    event: "order.canceled",
    data: order,
  });
  return { order, voided: canceledPayments.rows };
}
