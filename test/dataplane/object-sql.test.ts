import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../../lib/db/db.ts";
import { orderObjectSql, paymentObjectSql } from "../../lib/payments/object-sql.ts";
import { orderObject, paymentObject } from "../../lib/payments/serialize.ts";
import { openTestDb } from "../support/harness.ts";

// Text PostgreSQL can store: anything but NUL (lone surrogates cannot be generated as graphemes).
const text = fc.string({ unit: "grapheme", maxLength: 12 }).filter((s) => !s.includes("\u0000"));
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null });
const amount = fc.oneof(fc.nat(1_000_000), fc.maxSafeNat());
// Microseconds since the epoch, up to the year 9999 (what both sides write with four digits), ends included. The
// service stamps rows with now(); years before 1970 are left out (PGlite's driver reads years 0–99 as 1900–1999).
const microsOf = (iso: string) => BigInt(Date.parse(iso)) * 1000n;
const micros = fc.oneof(
  fc.bigInt({ min: 0n, max: microsOf("2100-01-01T00:00:00Z") }),
  fc.bigInt({ min: 0n, max: microsOf("9999-12-31T23:59:59.999Z") + 999n }),
  // Each millisecond's last microsecond: where rounding instead of truncating would show.
  fc.bigInt({ min: 0n, max: 10n ** 12n }).map((ms) => ms * 1000n + 999n),
);
const json = fc.jsonValue({ maxDepth: 2 }).filter((value) => !JSON.stringify(value).includes("\\u0000"));
// Integer-like keys included: JavaScript puts them first, whatever order they were written in.
const metadata = fc.dictionary(fc.oneof(text, fc.nat(99).map(String)), text, { maxKeys: 4 });

const paymentRow = fc.record({
  id: text,
  merchant_id: text,
  order_id: text,
  amount,
  currency: text,
  status: text,
  provider: text,
  provider_payment_id: maybe(text),
  payment_method: text,
  capture_method: text,
  amount_capturable: amount,
  amount_captured: amount,
  amount_refunded: amount,
  next_action: maybe(json),
  failure: maybe(json),
  cancellation_reason: maybe(text),
  return_url: maybe(text),
  description: maybe(text),
  metadata,
  attempt: fc.nat(1000),
  processing_since: fc.constant(null),
  created_at: micros,
  updated_at: micros,
});

const orderRow = fc.record({
  id: text,
  merchant_id: text,
  amount,
  currency: text,
  status: text,
  description: maybe(text),
  metadata,
  amount_paid: amount,
  amount_refunded: amount,
  created_at: micros,
  updated_at: micros,
});

// As text with all six digits: arithmetic on an interval would go through a float and lose the last ones.
const isoMicros = (us: bigint) =>
  `${new Date(Number(us / 1000n)).toISOString().slice(0, -1)}${String(us % 1000n).padStart(3, "0")}Z`;

const JSON_COLUMNS = new Set(["next_action", "failure", "metadata"]);
const asParameter = (column: string, value: unknown) => {
  if (typeof value === "bigint") return isoMicros(value);
  if (JSON_COLUMNS.has(column) && value !== null) return JSON.stringify(value);
  return value;
};

describe.each([
  { table: "payments", rows: paymentRow, sql: paymentObjectSql, code: paymentObject },
  { table: "orders", rows: orderRow, sql: orderObjectSql, code: orderObject },
] as const)("the API object of $table built by PostgreSQL", ({ table, rows, sql, code }) => {
  let db: Db;
  const copy = `${table}_objects`;
  beforeAll(async () => {
    db = await openTestDb();
    // The table's own column types, without its constraints (statuses, amounts, keys).
    await db.exec(`CREATE TABLE ${copy} (LIKE ${table})`);
  });
  afterAll(() => db?.close());

  /** Stores the row alone in the table; returns it as the driver reads it, and PostgreSQL's JSON text of it. */
  async function storeAndRead(row: Record<string, unknown>) {
    const columns = Object.keys(row);
    await db.exec(`TRUNCATE ${copy}`);
    await db.query(
      `INSERT INTO ${copy} (${columns.join(", ")}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")})`,
      columns.map((column) => asParameter(column, row[column])),
    );
    const { rows: read } = await db.query<Record<string, unknown> & { built: string }>(
      `SELECT ${columns.map((column) => `r.${column}`).join(", ")}, ${sql("r")}::text AS built FROM ${copy} r`,
    );
    const [{ built, ...stored }] = read as [Record<string, unknown> & { built: string }];
    return { built, stored: stored as never };
  }

  it("is the object the code builds from the same row, and JSON.stringify writes it byte for byte", async () => {
    await fc.assert(
      fc.asyncProperty(rows as fc.Arbitrary<Record<string, unknown>>, async (row) => {
        const { built, stored } = await storeAndRead(row);
        const object = code(stored);
        expect(JSON.parse(built)).toStrictEqual(object);
        // What a replay of a stored answer sends (lib/http/idempotency.ts) is what the first answer sent.
        expect(JSON.stringify(JSON.parse(built))).toBe(JSON.stringify(object));
      }),
      { numRuns: 200 },
    );
  });

  it("writes timestamps as toISOString does: UTC, milliseconds, the rest truncated", async () => {
    const [row] = fc.sample(rows as fc.Arbitrary<Record<string, unknown>>, { numRuns: 1, seed: 1 });
    const { built } = await storeAndRead({
      ...row,
      created_at: microsOf("2026-11-28T04:08:19.999Z") + 999n,
      updated_at: microsOf("9999-12-31T23:59:59.999Z") + 999n,
    });
    expect(JSON.parse(built)).toMatchObject({
      created_at: "2026-11-28T04:08:19.999Z",
      updated_at: "9999-12-31T23:59:59.999Z",
    });
  });
});
