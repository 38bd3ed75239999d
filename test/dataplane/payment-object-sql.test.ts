import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../../lib/db/db.ts";
import { paymentColumns } from "../../lib/payments/columns.ts";
import { paymentObjectSql } from "../../lib/payments/object-sql.ts";
import { type PaymentRow, paymentObject } from "../../lib/payments/serialize.ts";
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

const paymentRow = fc.record({
  id: text,
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
  metadata: fc.dictionary(text, text, { maxKeys: 4 }),
  attempt: fc.nat(1000),
  created_at: micros,
  updated_at: micros,
});

describe("the payment's API object built by PostgreSQL", () => {
  let db: Db;
  beforeAll(async () => {
    db = await openTestDb();
    // The payments table's own column types, without its constraints (statuses, amounts, the order's key).
    await db.exec("CREATE TABLE payment_object_rows (LIKE payments)");
  });
  afterAll(() => db?.close());

  type GeneratedRow = typeof paymentRow extends fc.Arbitrary<infer R> ? R : never;
  // As text with all six digits: arithmetic on an interval would go through a float and lose the last ones.
  const isoMicros = (us: bigint) =>
    `${new Date(Number(us / 1000n)).toISOString().slice(0, -1)}${String(us % 1000n).padStart(3, "0")}Z`;

  /** Stores the row alone in the table; returns it as the driver reads it, with PostgreSQL's object of it. */
  async function storeAndRead(row: GeneratedRow) {
    await db.exec("TRUNCATE payment_object_rows");
    await db.query(
      `INSERT INTO payment_object_rows (${paymentColumns()}) VALUES
         ($1, 'acct_parity', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, NULL, $20, $21)`,
      [
        row.id,
        row.order_id,
        row.amount,
        row.currency,
        row.status,
        row.provider,
        row.provider_payment_id,
        row.payment_method,
        row.capture_method,
        row.amount_capturable,
        row.amount_captured,
        row.amount_refunded,
        row.next_action === null ? null : JSON.stringify(row.next_action),
        row.failure === null ? null : JSON.stringify(row.failure),
        row.cancellation_reason,
        row.return_url,
        row.description,
        JSON.stringify(row.metadata),
        row.attempt,
        isoMicros(row.created_at),
        isoMicros(row.updated_at),
      ],
    );
    const { rows } = await db.query<PaymentRow & { built: Record<string, unknown> }>(
      `SELECT ${paymentColumns("r")}, ${paymentObjectSql("r")} AS built FROM payment_object_rows r`,
    );
    const [{ built, ...read }] = rows as [PaymentRow & { built: Record<string, unknown> }];
    return { built, read };
  }

  it("is the object the code builds from the same row, whatever the row holds", async () => {
    await fc.assert(
      fc.asyncProperty(paymentRow, async (row) => {
        const { built, read } = await storeAndRead(row);
        expect(built).toStrictEqual(paymentObject(read));
      }),
      { numRuns: 300 },
    );
  });

  it("writes timestamps as toISOString does: UTC, milliseconds, the rest truncated", async () => {
    const [row] = fc.sample(paymentRow, { numRuns: 1, seed: 1 }) as [GeneratedRow];
    const { built } = await storeAndRead({
      ...row,
      created_at: microsOf("2026-11-28T04:08:19.999Z") + 999n,
      updated_at: microsOf("9999-12-31T23:59:59.999Z") + 999n,
    });
    expect(built.created_at).toBe("2026-11-28T04:08:19.999Z");
    expect(built.updated_at).toBe("9999-12-31T23:59:59.999Z");
  });
});
