import type { PaymentObject } from "./serialize.ts";

/**
 * The payment's API object built by PostgreSQL from a row, for a statement that changes a payment and writes the
 * change's event in one go: the event carries the changed row, which the statement knows and the code does not
 * yet. It must build exactly what `paymentObject` (serialize.ts) builds from the same row; a test compares the two
 * over many rows. Timestamps: PostgreSQL keeps microseconds, the API shows milliseconds, and both sides truncate
 * (the driver's Date drops the rest, `to_char`'s MS does too).
 */
const PAYMENT_OBJECT_FIELDS = [
  "id",
  "object",
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
  "created_at",
  "updated_at",
] as const satisfies readonly (keyof PaymentObject)[];

// Compile-time: a field added to the payment object and not here fails the typecheck.
export const paymentObjectSqlIsComplete: Exclude<
  keyof PaymentObject,
  (typeof PAYMENT_OBJECT_FIELDS)[number]
> extends never
  ? true
  : false = true;

/**
 * An ISO 8601 UTC timestamp with milliseconds, as `Date.prototype.toISOString` writes it (years 1–9999). The
 * colons are quoted text: pgbench, which replays this statement in the bench, reads `:MI` as a variable.
 */
const isoTimestamp = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"')`;

function fieldSql(row: string, field: (typeof PAYMENT_OBJECT_FIELDS)[number]): string {
  if (field === "object") return "'payment'";
  if (field === "created_at" || field === "updated_at") return isoTimestamp(`${row}.${field}`);
  return `${row}.${field}`;
}

const byRow = new Map<string, string>();

/** `jsonb_build_object(...)` of the payment in the row (table, alias or WITH-clause) `row`; built once per name. */
export function paymentObjectSql(row: string): string {
  let sql = byRow.get(row);
  if (sql === undefined) {
    const pairs = PAYMENT_OBJECT_FIELDS.map((field) => `'${field}', ${fieldSql(row, field)}`);
    sql = `jsonb_build_object(${pairs.join(", ")})`;
    byRow.set(row, sql);
  }
  return sql;
}
