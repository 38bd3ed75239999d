import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Queryable } from "../../lib/db/db.ts";
import { claimDueEvents } from "../../lib/events/outbox-store.ts";
import { CANCEL_STATEMENT } from "../../lib/payments/cancel.ts";
import { providerMoveQuery } from "../../lib/payments/confirm.ts";
import type { Actor } from "../../lib/payments/context.ts";
import { createPaymentQuery } from "../../lib/payments/payments.ts";
import { settleQuery } from "../../lib/payments/settle.ts";
import { type BackendDb, openBackendDb, postgresSkipReason } from "../support/backends.ts";

const skip = await postgresSkipReason();
if (skip) process.stderr.write(`test/dataplane/query-plans: ${skip}\n`);

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  Plans?: PlanNode[];
}

/** Every scan of a table in a plan, as "table via index" (or "table via Seq Scan"). */
function scans(node: PlanNode): string[] {
  const own =
    node["Node Type"].endsWith("Scan") && node["Relation Name"]
      ? [`${node["Relation Name"]} via ${node["Index Name"] ?? node["Node Type"]}`]
      : [];
  return [...own, ...(node.Plans ?? []).flatMap(scans)];
}

/** The plan for these values, and the generic plan a named statement switches to after five executions. */
async function plans(db: BackendDb, sql: string, values: unknown[]): Promise<Record<string, string[]>> {
  const explain = async (tx: Queryable) => {
    const { rows } = await tx.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(
      `EXPLAIN (FORMAT JSON) ${sql}`,
      values,
    );
    return scans(rows[0]?.["QUERY PLAN"][0].Plan as PlanNode);
  };
  return {
    custom: await db.transaction(async (tx) => {
      await tx.exec("SET LOCAL plan_cache_mode = force_custom_plan");
      return explain(tx);
    }),
    generic: await db.transaction(async (tx) => {
      await tx.exec("SET LOCAL plan_cache_mode = force_generic_plan");
      return explain(tx);
    }),
  };
}

/** Payments (each with its order) of one merchant: `count` of them, ids `${prefix}1` … */
const insertPayments = (prefix: string, count: number) => `
  INSERT INTO orders (id, merchant_id, amount, currency)
    SELECT 'ord_${prefix}' || g, 'acct_plans', 1000, 'USD' FROM generate_series(1, ${count}) g;
  INSERT INTO payments (id, merchant_id, order_id, amount, currency, provider, payment_method)
    SELECT 'pay_${prefix}' || g, 'acct_plans', 'ord_${prefix}' || g, 1000, 'USD', 'sandbox', 'pm_card_visa'
    FROM generate_series(1, ${count}) g;`;

// A confirm with an Idempotency-Key: the statements as they run, the key's record and the stored answer included.
const keyed = {
  actor: {
    type: "merchant",
    merchantId: "acct_plans",
    requestId: "req_plans",
    source: "confirm",
    idempotencyKey: "key_plans",
    successStatus: 200,
  } satisfies Actor,
};

const settleAll = `
  UPDATE payments SET status = 'processing' WHERE status = 'requires_confirmation';
  UPDATE payments SET status = 'succeeded' WHERE status = 'processing';`;

/**
 * The hot statements that find one payment by id, on statistics that are wrong the way a young or changing table's
 * are (autovacuum off, so they stay wrong). A plan that leans on a partial index on status then reads every payment
 * in that index per call, which costs more the longer the service runs. Each must use the primary key (or another
 * index on the id) for the payment, for the values given and as the generic plan alike.
 */
describe.skipIf(skip)("query plans on PostgreSQL", () => {
  let db: BackendDb;
  beforeAll(async () => {
    db = await openBackendDb("pg");
    await db.exec(`
      ALTER TABLE payments SET (autovacuum_enabled = false);
      ALTER TABLE orders SET (autovacuum_enabled = false);`);
  });
  afterAll(async () => {
    await db?.close();
  });

  const paymentScans = (used: string[]) => used.filter((scan) => scan.startsWith("payments "));
  const orderScans = (used: string[]) => used.filter((scan) => scan.startsWith("orders "));
  const expectByIdOnly = (byMode: Record<string, string[]>) => {
    for (const used of Object.values(byMode)) {
      expect(paymentScans(used).length).toBeGreaterThan(0);
      expect(paymentScans(used).filter((scan) => !/_pkey$|payments_merchant_id$/.test(scan))).toEqual([]);
      expect(orderScans(used).filter((scan) => !/_pkey$/.test(scan))).toEqual([]);
    }
  };

  it("settles and cancels through the id while the statistics say no payment has settled yet", async () => {
    // Counted while all 6000 waited for a confirm; then 4000 settled.
    await db.exec(`${insertPayments("a", 6000)} ANALYZE orders; ANALYZE payments;
      UPDATE payments SET status = 'processing' WHERE id < 'pay_a5';
      UPDATE payments SET status = 'succeeded' WHERE status = 'processing';`);
    // The whole settle of a confirm's success: the payment's record and answer, the order's move to paid and its.
    const settle = settleQuery(
      keyed,
      "pay_a5999",
      ["processing"],
      {
        status: "succeeded",
        providerPaymentId: "sbx_1",
        amountCaptured: 1000,
      },
      "payment.confirm.succeeded",
      { answersRequest: true },
    );
    const settlePlans = await plans(db, settle.sql, settle.values);
    expectByIdOnly(settlePlans);
    expect(orderScans(settlePlans.generic ?? []).length).toBeGreaterThan(0);
    expectByIdOnly(
      await plans(db, CANCEL_STATEMENT, [
        "pay_a5999",
        "acct_plans",
        null,
        ["requires_confirmation", "requires_capture"],
      ]),
    );
  });

  it("claims events from a backlog while the statistics say none wait", async () => {
    // Counted while 50 000 events had all been sent; then 5 000 wait, three per partition (a sink that was down).
    await db.exec(`
      ALTER TABLE outbox SET (autovacuum_enabled = false);
      INSERT INTO outbox (id, type, source, subject, partition_key, merchant_id, data, sent_at)
        SELECT 'evt_sent' || g, 't', 's', 'p' || g / 2, 'p' || g / 2, 'm', '{}', now() FROM generate_series(1, 50000) g;
      ANALYZE outbox;
      INSERT INTO outbox (id, type, source, subject, partition_key, merchant_id, data)
        SELECT 'evt_wait' || g, 't', 's', 'q' || g / 3, 'q' || g / 3, 'm', '{}' FROM generate_series(3, 5002) g;`);
    // A plan that rescans the waiting events for each of them takes minutes: the statement timeout (5 s) fails it.
    const claimed = await claimDueEvents(db, 100, 30);
    expect(claimed).toHaveLength(100);
    expect(new Set(claimed.map((row) => row.partition_key)).size).toBe(100);
    // Each partition's oldest event, the oldest partitions first.
    expect(claimed.map((row) => row.id)).toEqual(
      Array.from({ length: 100 }, (_, i) => `evt_wait${3 + 3 * i}`),
    );
  });

  it("creates a payment reading its order by primary key", async () => {
    await db.exec(`${insertPayments("c", 5000)} ANALYZE orders;`);
    const providers = { names: ["sandbox"], forCurrency: () => "sandbox" } as unknown as Parameters<
      typeof createPaymentQuery
    >[0]["providers"];
    const create = createPaymentQuery({ ...keyed, providers, clock: () => new Date() }, "pay_new", {
      order_id: "ord_c4999",
      payment_method: "pm_card_visa",
      metadata: { sku: "1" },
    });
    // Each of these indexes ends with the id and the statement gives every column before it: one row at most.
    for (const used of Object.values(await plans(db, create.sql, create.values))) {
      expect(orderScans(used).length).toBeGreaterThan(0);
      expect(orderScans(used).filter((scan) => !/_pkey$|orders_merchant(_status)?_id$/.test(scan))).toEqual(
        [],
      );
    }
  });

  it("confirms and cancels through the id while the statistics say few payments wait for a confirm", async () => {
    // Counted while every payment had settled; then 20 000 new ones wait (a batch of checkouts).
    await db.exec(`${settleAll} ANALYZE payments; ${insertPayments("b", 20_000)}`);
    const confirmMove = providerMoveQuery(keyed, "pay_b19999", "confirm", {
      set: "status = 'processing'",
      values: [],
    });
    expectByIdOnly(await plans(db, confirmMove.sql, confirmMove.values));
    const captureMove = providerMoveQuery(keyed, "pay_b19999", "capture", {
      set: "status = 'processing'",
      condition: "COALESCE($3, amount_capturable) <= amount_capturable",
      values: [null],
    });
    expectByIdOnly(await plans(db, captureMove.sql, captureMove.values));
    expectByIdOnly(
      await plans(db, CANCEL_STATEMENT, [
        "pay_b19999",
        "acct_plans",
        null,
        ["requires_confirmation", "requires_capture"],
      ]),
    );
  });
});
