import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { orderColumns, paymentColumns } from "../lib/payments/columns.ts";
import { orderObjectSql, paymentObjectSql } from "../lib/payments/object-sql.ts";
import { execSql } from "./database.ts";
import { round, startUsage, type Usage } from "./proc.ts";

const run = promisify(execFile);

/**
 * The database's ceiling for what the service asks of it: pgbench replaying, statement for statement, the round
 * trips of one confirm (and of a whole create-order, create-payment, confirm flow) on copies of the service's
 * tables (same columns, constraints, indexes and triggers) in a schema of their own. What the service reaches
 * against this is what the Node side costs. The statements mirror lib/payments (confirm.ts, settle.ts,
 * records.ts, orders.ts, payments.ts), lib/http/idempotency.ts and the sandbox ledger; keep them in step.
 */
const SCHEMA = "pgbench_ref";
const MERCHANT = "acct_pgbench";

// Representative payloads: the payment as the API returns it (outbox data, stored idempotent response).
const PAYMENT_JSON = JSON.stringify({
  id: "pay_0192f5a7c3e47b21a6d09f1e2c3b4a59",
  object: "payment",
  order_id: "ord_0192f5a7c3e47b21a6d09f1e2c3b4a58",
  amount: 123456,
  currency: "USD",
  status: "succeeded",
  provider: "sandbox",
  provider_payment_id: "sbx_0192f5a7c3e47b21a6d09f1e2c3b4a59",
  payment_method: "pm_card_visa",
  capture_method: "automatic",
  amount_captured: 123456,
  amount_refunded: 0,
  next_action: null,
  failure: null,
  cancellation_reason: null,
  description: null,
  metadata: {},
  created_at: "2026-11-27T10:00:00.000Z",
  updated_at: "2026-11-27T10:00:00.100Z",
});
// pgbench turns every :name in a script into a bind parameter, string literals included: no colon may touch a name.
const literal = (text: string) => `'${text.replaceAll("'", "''").replace(/:(?=\w)/g, ": ")}'`;
const newId = (prefix: string) => `'${prefix}_' || lpad(to_hex(nextval('id_seq')), 32, '0')`;

const claim = (
  key: string,
) => `INSERT INTO idempotency_keys (merchant_id, key, request_hash, locked_until, expires_at)
VALUES ('${MERCHANT}', '${key}-' || :r, 'Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9v', now() + make_interval(secs => 60), now() + make_interval(secs => 86400))
ON CONFLICT (merchant_id, key) DO UPDATE SET
  request_hash = EXCLUDED.request_hash, locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at,
  response_status = NULL, response_body = NULL, created_at = now()
WHERE idempotency_keys.expires_at < now()
   OR (idempotency_keys.response_status IS NULL AND idempotency_keys.locked_until < now()
       AND idempotency_keys.request_hash = EXCLUDED.request_hash)
RETURNING 1;`;

/** The key's answer, written by the statement that records the change (a create's object, a confirm's payment). */
const answer = (key: string, status: number, source: string, body = literal(PAYMENT_JSON)) =>
  `answer AS (
  UPDATE idempotency_keys SET recovery_point = COALESCE(recovery_point, 'object:' || :r), response_status = ${status},
    response_body = ${body}, locked_until = NULL
  WHERE merchant_id = '${MERCHANT}' AND key = '${key}-' || :r AND response_status IS NULL
    AND EXISTS (SELECT 1 FROM ${source})
)`;

/** A change's audit and outbox inserts as WITH-clauses over `source`, as lib/payments/records.ts writes them. */
const changeCtes = (
  prefix: string,
  source: string,
  action: string,
  objectType: string,
  objectId: string,
  before: string | null,
  after: string,
  amount: string,
  event: string,
  data = `${literal(PAYMENT_JSON)}::jsonb`,
) => `${prefix}audit AS (
  INSERT INTO audit_log (actor_type, actor_id, action, object_type, object_id, status_before, status_after, amount, currency, request_id)
  SELECT 'merchant', '${MERCHANT}', '${action}', '${objectType}', ${objectId}, ${before === null ? "NULL" : `'${before}'`}, '${after}', ${amount}, 'USD', 'req_' || :r FROM ${source}
),
${prefix}event AS (
  INSERT INTO outbox (id, type, source, subject, partition_key, merchant_id, data, traceparent)
  SELECT ${newId("evt")}, 'io.payment-service.${event}', '/payment-service/confirm', ${objectId}, ${objectId}, '${MERCHANT}', ${data}, NULL FROM ${source}
  RETURNING seq
)`;

/**
 * Steps 1 to 3 of confirmPayment. `payment` is the SQL naming the payment's id (a WITH-clause `next` may be given to
 * pick it); the move returns its id, order id and amount into p_id, p_order_id, p_amount for the steps after.
 */
const confirmSteps = (payment: string, next = "") => `${claim("confirm")}
WITH ${next}locked_order AS (
  SELECT o.status FROM orders o JOIN payments p ON p.order_id = o.id
  WHERE p.id = ${payment} AND p.merchant_id = '${MERCHANT}' FOR UPDATE OF o
), locked_payment AS (
  SELECT id AS locked_id, status AS locked_status FROM payments
  WHERE id = ${payment} AND merchant_id = '${MERCHANT}' AND EXISTS (SELECT 1 FROM locked_order) FOR UPDATE
), moved AS (
  UPDATE payments SET status = 'processing', attempt = attempt + 1,
    payment_method = COALESCE(NULL, payment_method), return_url = COALESCE(NULL, return_url),
    failure = NULL, next_action = NULL, processing_since = now(), updated_at = now()
  FROM locked_payment
  WHERE id = ${payment} AND id = locked_id AND locked_status = 'requires_confirmation'
    AND (SELECT status FROM locked_order) = 'pending'
  RETURNING ${paymentColumns("payments")}
), ${changeCtes("", "moved", "payment.confirm", "payment", "moved.id", "requires_confirmation", "processing", "moved.amount", "payment.processing", `(${paymentObjectSql("moved")})::jsonb`)},
recovery AS (
  UPDATE idempotency_keys SET recovery_point = COALESCE(recovery_point, 'payment:' || (SELECT id FROM moved))
  WHERE merchant_id = '${MERCHANT}' AND key = 'confirm-' || :r AND response_status IS NULL
    AND EXISTS (SELECT 1 FROM moved)
)
SELECT id, order_id, amount FROM moved
\\gset p_
INSERT INTO sandbox_charges (idempotency_key, provider_payment_id, payment_id, operation, amount, currency, status)
VALUES ('sandbox.' || :p_id || '.authorize.1', 'sbx_' || :p_id, :p_id, 'authorize', :p_amount, 'USD', 'succeeded')
ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
RETURNING status, provider_payment_id;
WITH locked_order AS (SELECT id FROM orders WHERE id = (SELECT order_id FROM payments WHERE id = :p_id) FOR UPDATE),
old AS (SELECT id, status AS previous_status FROM payments WHERE id = :p_id AND EXISTS (SELECT 1 FROM locked_order) FOR UPDATE),
moved AS (
  UPDATE payments p SET status = 'succeeded', provider_payment_id = COALESCE('sbx_' || :p_id, p.provider_payment_id),
    amount_captured = COALESCE(:p_amount, p.amount_captured), amount_capturable = COALESCE(0, p.amount_capturable),
    next_action = NULL, failure = NULL, processing_since = NULL, updated_at = now()
  FROM old
  WHERE p.id = :p_id AND p.id = old.id AND old.previous_status = ANY('{processing}'::text[])
  RETURNING ${paymentColumns("p")}, old.previous_status
), changed AS (
  SELECT m.*, ${paymentObjectSql("m")} AS object FROM moved m WHERE m.previous_status <> m.status
),
${answer("confirm", 200, "changed", "(SELECT object::text FROM changed)")},
${changeCtes("payment_", "changed", "payment.confirm.succeeded", "payment", ":p_id", "processing", "succeeded", "changed.amount_captured", "payment.succeeded", "changed.object::jsonb")},
paid AS (
  UPDATE orders SET status = 'paid', amount_paid = (SELECT amount_captured FROM changed), updated_at = now()
  WHERE id = (SELECT order_id FROM changed) AND status = 'pending'
    AND (SELECT count(*) FROM payment_event) IS NOT NULL
  RETURNING ${orderColumns()}
), ${changeCtes("order_", "paid", "order.paid", "order", "paid.id", "pending", "paid", "paid.amount_paid", "order.paid", `(${orderObjectSql("paid")})::jsonb`)}
SELECT ${paymentColumns()}, previous_status FROM moved;
`;

/** One confirm of a payment created beforehand (the setup creates them; a sequence hands each out once). */
export const CONFIRM_SCRIPT = `\\set r random(1, 1000000000000)
${confirmSteps("(SELECT id FROM next)", "next AS (SELECT 'pay_pgb_' || lpad(nextval('confirm_seq')::text, 28, '0') AS id),\n")}`;

/** Create order, create payment, confirm: every round trip of the confirm reference's journey. */
export const FLOW_SCRIPT = `\\set r random(1, 1000000000000)
\\set amount random(100, 250000)
${claim("order")}
WITH created AS (
  INSERT INTO orders (id, merchant_id, amount, currency, description, metadata)
  VALUES (${newId("ord")}, '${MERCHANT}', :amount, 'USD', 'Load test order (USD)', '{}') RETURNING id, amount
), ${changeCtes("", "created", "order.create", "order", "created.id", null, "pending", "created.amount", "order.created")},
${answer("order", 201, "created")}
SELECT id FROM created
\\gset o_
${claim("payment")}
WITH created AS (
  INSERT INTO payments (id, merchant_id, order_id, amount, currency, provider, payment_method, capture_method,
                        return_url, description, metadata, created_at, updated_at)
  SELECT ${newId("pay")}, '${MERCHANT}', o.id, o.amount, o.currency, chosen.provider, 'pm_card_visa', 'automatic',
         NULL, NULL, '{}', now(), now()
  FROM orders o CROSS JOIN LATERAL
    (SELECT COALESCE(NULL::text, '{"USD": "sandbox"}'::jsonb ->> o.currency, '{"*": "sandbox"}'::jsonb ->> '*') AS provider) chosen
  WHERE o.id = :o_id AND o.merchant_id = '${MERCHANT}' AND o.status = 'pending' AND chosen.provider = ANY('{sandbox}'::text[])
  FOR SHARE OF o
  RETURNING ${paymentColumns()}
), created_object AS (
  SELECT c.*, ${paymentObjectSql("c")} AS object FROM created c
), ${changeCtes("", "created_object", "payment.create", "payment", "created_object.id", null, "requires_confirmation", "created_object.amount", "payment.created", "created_object.object::jsonb")},
${answer("payment", 201, "created", "(SELECT object::text FROM created_object)")}
SELECT id, amount FROM created
\\gset p_
${confirmSteps(":p_id")}`;

/**
 * Copies of the service's tables (in `serviceSchema`) with everything that costs on write: constraints, indexes,
 * triggers.
 */
function setupSql(prepared: number, serviceSchema: string): string {
  const copy = (table: string) =>
    `CREATE TABLE ${SCHEMA}.${table} (LIKE ${serviceSchema}.${table} INCLUDING ALL);`;
  return `
DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE;
CREATE SCHEMA ${SCHEMA};
${["orders", "payments", "audit_log", "outbox", "idempotency_keys", "sandbox_charges"].map(copy).join("\n")}
ALTER TABLE ${SCHEMA}.payments ADD FOREIGN KEY (order_id) REFERENCES ${SCHEMA}.orders (id);
CREATE TRIGGER payments_transition BEFORE UPDATE ON ${SCHEMA}.payments
  FOR EACH ROW EXECUTE FUNCTION ${serviceSchema}.payments_check_transition();
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON ${SCHEMA}.audit_log
  FOR EACH ROW EXECUTE FUNCTION ${serviceSchema}.audit_log_append_only();
CREATE SEQUENCE ${SCHEMA}.id_seq START 1000000000;
CREATE SEQUENCE ${SCHEMA}.confirm_seq;
INSERT INTO ${SCHEMA}.orders (id, merchant_id, amount, currency, description)
  SELECT 'ord_pgb_' || lpad(g::text, 28, '0'), '${MERCHANT}', 100 + g % 250000, 'USD', 'Load test order (USD)'
  FROM generate_series(1, ${prepared}) g;
INSERT INTO ${SCHEMA}.payments (id, merchant_id, order_id, amount, currency, provider, payment_method)
  SELECT 'pay_pgb_' || lpad(g::text, 28, '0'), '${MERCHANT}', 'ord_pgb_' || lpad(g::text, 28, '0'), 100 + g % 250000,
         'USD', 'sandbox', 'pm_card_visa'
  FROM generate_series(1, ${prepared}) g;
ANALYZE ${SCHEMA}.orders;
ANALYZE ${SCHEMA}.payments;
`;
}

export interface PgbenchResult {
  clients: number;
  /** pgbench's query mode: prepared (named statements) or extended. */
  mode: string;
  transactions_per_second: number;
  latency_avg_ms: number | null;
  transactions: number;
  failed: number;
  usage: Usage;
}

export async function preparePgbench(
  dbUrl: string,
  durationSeconds: number,
  serviceSchema = "public",
): Promise<void> {
  // More prepared payments than pgbench can confirm in the time: a client that runs out would abort.
  await execSql(dbUrl, setupSql(Math.max(20_000, Math.ceil(durationSeconds * 8_000)), serviceSchema));
}

/**
 * Runs a script with as many clients as the service's pool has connections, sending its statements as the service
 * does: named statements parsed once per connection (`-M prepared`, the default), or with DB_PREPARED_STATEMENTS
 * off, unnamed ones parsed and planned on every execution (`-M extended`).
 */
export async function runPgbench(
  dbUrl: string,
  script: string,
  options: { clients: number; durationSeconds: number; prepared: boolean; serviceSchema?: string },
): Promise<PgbenchResult> {
  const dir = await mkdtemp(join(tmpdir(), "pgbench-"));
  try {
    const file = join(dir, "script.sql");
    await writeFile(file, script);
    const url = new URL(dbUrl);
    const usage = startUsage(undefined);
    const { stdout } = await run(
      "pgbench",
      [
        "-n",
        "-M",
        options.prepared ? "prepared" : "extended",
        "-c",
        String(options.clients),
        "-j",
        "2",
        "-T",
        String(Math.max(1, Math.round(options.durationSeconds))),
        "-f",
        file,
        "-h",
        url.hostname,
        "-p",
        url.port || "5432",
        "-U",
        decodeURIComponent(url.username) || "postgres",
        url.pathname.slice(1),
      ],
      {
        env: {
          ...process.env,
          PGOPTIONS: `-c search_path=${SCHEMA},${options.serviceSchema ?? "public"}`,
          PGPASSWORD: url.password,
        },
        maxBuffer: 10 * 1024 * 1024,
      },
    ).catch((error: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`pgbench failed: ${error.stderr?.slice(-2_000) || error.message}`);
    });
    const used = usage.stop();
    const number = (pattern: RegExp) => {
      const m = pattern.exec(stdout)?.[1];
      return m === undefined ? null : Number(m);
    };
    return {
      clients: options.clients,
      mode: options.prepared ? "prepared" : "extended",
      transactions_per_second: round(number(/tps = ([\d.]+)/) ?? 0, 0),
      latency_avg_ms: number(/latency average = ([\d.]+) ms/),
      transactions: number(/actually processed: (\d+)/) ?? 0,
      failed: number(/number of failed transactions: (\d+)/) ?? 0,
      usage: used,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
