import type { OrderObject, PaymentObject } from "./serialize.ts";

/**
 * The API objects built by PostgreSQL from a row, for a statement that changes a row and writes the change's event
 * (and the request's stored answer) in one go: they carry the changed row, which the statement knows and the code does
 * not yet. Each must build exactly what its serializer in serialize.ts builds from the same row, keys in the same
 * order (`json_build_object` keeps them; a stored answer is replayed as the code writes it); a test compares them
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

const ORDER_OBJECT_FIELDS = [
  "id",
  "object",
  "amount",
  "currency",
  "status",
  "description",
  "metadata",
  "amount_paid",
  "amount_refunded",
  "created_at",
  "updated_at",
] as const satisfies readonly (keyof OrderObject)[];

// Compile-time: a field added to an object and not here fails the typecheck.
type Complete<O, Fields extends readonly unknown[]> =
  Exclude<keyof O, Fields[number]> extends never ? true : ["not built:", Exclude<keyof O, Fields[number]>];
export const objectSqlIsComplete: [
  Complete<PaymentObject, typeof PAYMENT_OBJECT_FIELDS>,
  Complete<OrderObject, typeof ORDER_OBJECT_FIELDS>,
] = [true, true];

/**
 * An ISO 8601 UTC timestamp with milliseconds, as `Date.prototype.toISOString` writes it (years 1–9999). The
 * colons are quoted text: pgbench, which replays these statements in the bench, reads `:MI` as a variable.
 */
const isoTimestamp = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"')`;

/** `json_build_object(...)` of the object in the row (table, alias or WITH-clause) it is given; built once per name. */
function objectSql(object: string, fields: readonly string[]): (row: string) => string {
  const byRow = new Map<string, string>();
  return (row) => {
    let sql = byRow.get(row);
    if (sql === undefined) {
      const value = (field: string) =>
        field === "object"
          ? `'${object}'`
          : field.endsWith("_at")
            ? isoTimestamp(`${row}.${field}`)
            : `${row}.${field}`;
      sql = `json_build_object(${fields.map((field) => `'${field}', ${value(field)}`).join(", ")})`;
      byRow.set(row, sql);
    }
    return sql;
  };
}

export const paymentObjectSql = objectSql("payment", PAYMENT_OBJECT_FIELDS);
export const orderObjectSql = objectSql("order", ORDER_OBJECT_FIELDS);
