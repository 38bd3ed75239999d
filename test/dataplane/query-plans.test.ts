import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SETTLE_STATEMENT } from "../../lib/payments/settle.ts";
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

/**
 * The hot statements' plans on a young table: statistics taken while every payment still waited for its confirm,
 * then many settled (autovacuum off, so they stay that way). A plan that leans on a partial index on status then
 * reads every settled payment per call, which costs more the longer the service runs.
 */
describe.skipIf(skip)("query plans on PostgreSQL", () => {
  let db: BackendDb;
  beforeAll(async () => {
    db = await openBackendDb("pg");
    await db.exec(`
      ALTER TABLE payments SET (autovacuum_enabled = false);
      ALTER TABLE orders SET (autovacuum_enabled = false);
      INSERT INTO orders (id, merchant_id, amount, currency)
        SELECT 'ord_' || g, 'acct_plans', 1000, 'USD' FROM generate_series(1, 6000) g;
      INSERT INTO payments (id, merchant_id, order_id, amount, currency, provider, payment_method)
        SELECT 'pay_' || g, 'acct_plans', 'ord_' || g, 1000, 'USD', 'sandbox', 'pm_card_visa'
        FROM generate_series(1, 6000) g;
      ANALYZE orders;
      ANALYZE payments;
      UPDATE payments SET status = 'processing' WHERE id <= 'pay_4';
      UPDATE payments SET status = 'succeeded' WHERE status = 'processing';
    `);
  });
  afterAll(async () => {
    await db?.close();
  });

  it("settles a payment through its primary key, whatever the statistics say", async () => {
    const { rows } = await db.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(
      `EXPLAIN (FORMAT JSON) ${SETTLE_STATEMENT}`,
      ["pay_5999", ["processing"], "succeeded", "sbx_1", 1000, 0, null, null],
    );
    const used = scans(rows[0]?.["QUERY PLAN"][0].Plan as PlanNode);
    expect(used.filter((scan) => scan.startsWith("payments "))).toEqual(
      expect.arrayContaining(["payments via payments_pkey"]),
    );
    expect(used.filter((scan) => !scan.endsWith("_pkey"))).toEqual([]);
  });
});
