import { ApiError, invalidState, notFound } from "../http/errors.ts";
import type { JsonText } from "../http/json-text.ts";
import type { ProviderName } from "../providers/provider.ts";
import { orderColumns, paymentColumns } from "./columns.ts";
import type { VerbContext } from "./context.ts";
import { newId } from "./ids.ts";
import { type ListParams, listPage } from "./list.ts";
import { CURRENCIES } from "./money.ts";
import { paymentObjectSql } from "./object-sql.ts";
import { changeCtes, FromSource } from "./records.ts";
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

/**
 * Creates a payment for a pending order; amount and currency come from the order. One atomic statement reads the
 * order, inserts the payment and writes its audit row, its event and the request's answer: when the order is not
 * there, not pending, or its provider is not configured, nothing is written, and a read after says which. The
 * order is read FOR SHARE: an order cancel (which holds it FOR UPDATE until it commits) is waited for and the order
 * read again, canceled; one that comes after waits for this payment and cancels it with the order.
 */
export async function createPayment(ctx: VerbContext, input: CreatePaymentInput): Promise<PaymentObject> {
  const { sql, values, storesAnswer } = createPaymentQuery(ctx, newId("pay"), input);
  const { rows } = await ctx.db.query<PaymentRow>(sql, values);
  const row = rows[0];
  if (!row) throw await whyNotCreated(ctx, input);
  if (storesAnswer) ctx.actor.answerStored = true;
  ctx.onEventsWritten();
  return paymentObject(row);
}

type QueryContext = Pick<VerbContext, "actor" | "providers" | "clock">;

/** The create's one statement and its parameters. */
export function createPaymentQuery(
  ctx: QueryContext,
  id: string,
  input: CreatePaymentInput,
): { sql: string; values: unknown[]; storesAnswer: boolean } {
  const change = changeCtes(
    ctx,
    {
      objectType: "payment",
      objectId: id,
      action: "payment.create",
      statusBefore: null,
      statusAfter: "requires_confirmation",
      amount: new FromSource("created_object.amount"),
      currency: new FromSource("created_object.currency"),
      event: "payment.created",
      data: new FromSource("created_object.object"),
      answersRequest: true,
    },
    "created_object",
    13,
  );
  // The provider is the one asked for, else its currency's route (or the "*" route); it must be configured.
  const sql = `WITH created AS (
       INSERT INTO payments (id, merchant_id, order_id, amount, currency, provider, payment_method, capture_method,
                             return_url, description, metadata, created_at, updated_at)
       SELECT $1, $2, o.id, o.amount, o.currency, chosen.provider, $5, $6, $7, $8, $9, $10, $10
       FROM orders o CROSS JOIN LATERAL
         (SELECT COALESCE($4::text, $11::jsonb ->> o.currency, $11::jsonb ->> '*') AS provider) chosen
       WHERE o.id = $3 AND o.merchant_id = $2 AND o.status = 'pending' AND chosen.provider = ANY($12::text[])
       FOR SHARE OF o
       RETURNING ${paymentColumns()}
     ), created_object AS (
       SELECT c.*, ${paymentObjectSql("c")} AS object FROM created c
     ), ${change.sql}
     SELECT ${paymentColumns()} FROM created`;
  const values = [
    id,
    ctx.actor.merchantId,
    input.order_id,
    input.provider ?? null,
    input.payment_method,
    input.capture_method ?? "automatic",
    input.return_url ?? null,
    input.description ?? null,
    JSON.stringify(input.metadata ?? {}),
    ctx.clock(),
    providerRoutes(ctx),
    ctx.providers.names,
    ...change.values,
  ];
  return { sql, values, storesAnswer: change.storesAnswer };
}

const routesOf = new WeakMap<VerbContext["providers"], string>();

/**
 * Each currency's provider for a payment's first attempt, as the routes name it (PROVIDER_ROUTES), and "*" for any
 * other currency, as JSON; the routes are set when the providers are made, so once per providers object.
 */
function providerRoutes(ctx: QueryContext): string {
  let routes = routesOf.get(ctx.providers);
  if (routes === undefined) {
    const currencies = [...CURRENCIES, "*"];
    routes = JSON.stringify(
      Object.fromEntries(currencies.map((currency) => [currency, ctx.providers.forCurrency(currency)])),
    );
    routesOf.set(ctx.providers, routes);
  }
  return routes;
}

/** Why no payment was created: the order missing or not pending, or its provider not configured. */
async function whyNotCreated(ctx: VerbContext, input: CreatePaymentInput): Promise<ApiError> {
  const orders = await ctx.db.query<OrderRow>(
    `SELECT ${orderColumns()} FROM orders WHERE id = $1 AND merchant_id = $2`,
    [input.order_id, ctx.actor.merchantId],
  );
  const order = orders.rows[0];
  if (!order) return notFound("order", "order_id");
  if (order.status !== "pending")
    return invalidState(`Order is ${order.status}; payments can only be added to a pending order.`);
  const provider = input.provider ?? ctx.providers.forCurrency(order.currency);
  if (!ctx.providers.get(provider)) {
    return new ApiError("validation_failed", `Provider ${provider} is not configured.`, {
      errors: [{ path: "provider", message: "Provider is not configured." }],
    });
  }
  // Nothing explains it now: the order changed while the payment was being created.
  return invalidState("The order changed while the payment was being created; retry.");
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
