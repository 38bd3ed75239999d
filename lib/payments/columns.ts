import type { OrderRow, PaymentRow, RefundRow } from "./serialize.ts";

/**
 * The columns a statement reads for each row type, named instead of `*`. Statements run as named (prepared)
 * statements, and PostgreSQL refuses to run one whose result columns changed since it was prepared ("cached plan
 * must not change result type"): with `*`, a migration that only adds a column would break every such statement on
 * every open connection (and behind PgBouncer, on every server connection sharing it) until they reconnect. With the
 * columns named, an added column changes no result and the plans are simply made again.
 */
const ORDER_FIELDS = [
  "id",
  "merchant_id",
  "amount",
  "currency",
  "status",
  "description",
  "metadata",
  "amount_paid",
  "amount_refunded",
  "created_at",
  "updated_at",
] as const satisfies readonly (keyof OrderRow)[];

const PAYMENT_FIELDS = [
  "id",
  "merchant_id",
  "order_id",
  "amount",
  "currency",
  "status",
  "provider",
  "provider_payment_id",
  "payment_method",
  "capture_method",
  "amount_capturable",
  "amount_captured",
  "amount_refunded",
  "next_action",
  "failure",
  "cancellation_reason",
  "return_url",
  "description",
  "metadata",
  "attempt",
  "processing_since",
  "created_at",
  "updated_at",
] as const satisfies readonly (keyof PaymentRow)[];

const REFUND_FIELDS = [
  "id",
  "merchant_id",
  "payment_id",
  "amount",
  "currency",
  "status",
  "reason",
  "failure",
  "created_at",
  "updated_at",
] as const satisfies readonly (keyof RefundRow)[];

// Compile-time: every field of each row type is read (a field added to a type and not here fails the typecheck).
type Lists<Row, Fields extends readonly unknown[]> =
  Exclude<keyof Row, Fields[number]> extends never ? true : ["not read:", Exclude<keyof Row, Fields[number]>];
export const columnListsAreComplete: [
  Lists<OrderRow, typeof ORDER_FIELDS>,
  Lists<PaymentRow, typeof PAYMENT_FIELDS>,
  Lists<RefundRow, typeof REFUND_FIELDS>,
] = [true, true, true];

/** `id, merchant_id, …`, or `o.id, o.merchant_id, …` qualified by a table name or alias; built once for each. */
function columnList(fields: readonly string[]): (table?: string) => string {
  const byTable = new Map<string, string>();
  return (table = "") => {
    let text = byTable.get(table);
    if (text === undefined) {
      text = fields.map((field) => (table ? `${table}.${field}` : field)).join(", ");
      byTable.set(table, text);
    }
    return text;
  };
}

export const orderColumns = columnList(ORDER_FIELDS);
export const paymentColumns = columnList(PAYMENT_FIELDS);
export const refundColumns = columnList(REFUND_FIELDS);

/** The columns of a table the list pages read. */
export const columnsOf = { orders: orderColumns, payments: paymentColumns, refunds: refundColumns } as const;
