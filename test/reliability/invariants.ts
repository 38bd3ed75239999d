import type { Db, Queryable } from "../../lib/db/db.ts";
import {
  PAYMENT_TRANSITIONS,
  type PaymentStatus,
  TERMINAL_PAYMENT_STATUSES,
} from "../../lib/payments/state-machine.ts";

/**
 * The invariants of the whole database, checked after a race, a crash or a fault run. Each check is a query over
 * every row, so the same function serves a test with ten payments and a soak run with a hundred thousand. The
 * result is a list of violations in plain words (empty when everything holds), so a failing test says what broke.
 *
 * What is checked:
 * - ledger vs payments: what the sandbox provider charged (its own books, sandbox_charges) equals what we recorded
 *   as captured, per payment; at most one charge per payment and per order; no charge for a payment we do not know;
 *   refunds at the provider equal our succeeded refunds;
 * - orders vs payments: at most one succeeded payment per order; an order is paid exactly when one of its payments
 *   succeeded, for the amount captured; a canceled order has no live payment; a payment matches its order;
 * - refunds: reserved refunds (pending + succeeded) equal the payment's amount_refunded, never above what was
 *   captured; the order's amount_refunded is the sum of its succeeded refunds;
 * - audit rows per change: every object's audit trail is one unbroken chain from its creation to its current
 *   status, through allowed transitions only, with nothing after a terminal status;
 * - outbox rows per change: every audited change that announces an event has exactly one outbox row, with the
 *   object in the state the event names, for the object's merchant;
 * - idempotency: no 5xx answer is stored, and every stored answer that names an object names one that exists and
 *   belongs to the key's merchant.
 */
export interface InvariantOptions {
  /** Payments may still be processing (their provider outcome not reconciled yet). Default true. */
  allowProcessing?: boolean;
  /** Refunds may still be pending at the provider. Default true. */
  allowPendingRefunds?: boolean;
  /** Idempotency keys may still be in flight (a request running, or the lease of a crashed one). Default true. */
  allowInFlightKeys?: boolean;
}

type Rows<T> = Promise<T[]>;
const rows = async <T>(db: Queryable, sql: string, params?: unknown[]): Rows<T> =>
  (await db.query<T>(sql, params)).rows;

const TERMINAL = new Set<string>(TERMINAL_PAYMENT_STATUSES);
const MAX_REPORTED = 40;

/**
 * Checks every invariant in one snapshot of the database (a REPEATABLE READ transaction when given a Db), so that a
 * check running while the service works sees each change whole: never an order without the audit row its
 * transaction also wrote.
 */
export async function checkInvariants(db: Queryable | Db, options: InvariantOptions = {}): Promise<string[]> {
  if ("transaction" in db) {
    return db.transaction(async (tx) => {
      await tx.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY");
      return checkInvariants(tx, options);
    });
  }
  const violations: string[] = [];
  const report = (message: string) => violations.push(message);
  await checkOrders(db, report);
  await checkPayments(db, report, options);
  await checkRefunds(db, report, options);
  await checkLedger(db, report);
  await checkAuditChains(db, report);
  await checkOutbox(db, report);
  await checkIdempotency(db, report, options);
  if (violations.length > MAX_REPORTED) {
    return [...violations.slice(0, MAX_REPORTED), `… and ${violations.length - MAX_REPORTED} more`];
  }
  return violations;
}

/** Throws with every violation listed; for scripts and tests that want one line. */
export async function assertInvariants(db: Queryable | Db, options: InvariantOptions = {}): Promise<void> {
  const violations = await checkInvariants(db, options);
  if (violations.length > 0) throw new Error(`invariants violated:\n- ${violations.join("\n- ")}`);
}

type Report = (message: string) => void;

async function checkOrders(db: Queryable, report: Report) {
  for (const r of await rows<{ order_id: string; n: number }>(
    db,
    "SELECT order_id, count(*)::int AS n FROM payments WHERE status = 'succeeded' GROUP BY order_id HAVING count(*) > 1",
  )) {
    report(`order ${r.order_id} has ${r.n} succeeded payments`);
  }
  for (const r of await rows<{ id: string; status: string; amount_paid: number; captured: number | null }>(
    db,
    `SELECT o.id, o.status, o.amount_paid, p.amount_captured AS captured
     FROM orders o LEFT JOIN payments p ON p.order_id = o.id AND p.status = 'succeeded'
     WHERE (o.status = 'paid') <> (p.id IS NOT NULL)
        OR (p.id IS NOT NULL AND o.amount_paid <> p.amount_captured)
        OR (p.id IS NULL AND o.amount_paid <> 0)`,
  )) {
    report(
      `order ${r.id} is ${r.status} with amount_paid ${r.amount_paid}, its succeeded payment captured ${r.captured ?? "nothing"}`,
    );
  }
  for (const r of await rows<{ id: string; payment: string; status: string }>(
    db,
    `SELECT o.id, p.id AS payment, p.status FROM orders o JOIN payments p ON p.order_id = o.id
     WHERE o.status = 'canceled' AND p.status NOT IN ('canceled', 'failed')`,
  )) {
    report(`order ${r.id} is canceled but its payment ${r.payment} is ${r.status}`);
  }
  for (const r of await rows<{ id: string }>(
    db,
    `SELECT p.id FROM payments p JOIN orders o ON o.id = p.order_id
     WHERE p.amount <> o.amount OR p.currency <> o.currency OR p.merchant_id <> o.merchant_id`,
  )) {
    report(`payment ${r.id} does not match its order's amount, currency or merchant`);
  }
  for (const r of await rows<{ id: string; recorded: number; refunded: number }>(
    db,
    `SELECT o.id, o.amount_refunded AS recorded, COALESCE(sum(r.amount), 0)::bigint AS refunded
     FROM orders o LEFT JOIN payments p ON p.order_id = o.id
     LEFT JOIN refunds r ON r.payment_id = p.id AND r.status = 'succeeded'
     GROUP BY o.id, o.amount_refunded HAVING o.amount_refunded <> COALESCE(sum(r.amount), 0)`,
  )) {
    report(`order ${r.id} records ${r.recorded} refunded, its succeeded refunds sum to ${r.refunded}`);
  }
}

async function checkPayments(db: Queryable, report: Report, options: InvariantOptions) {
  const checks: [string, string][] = [
    [
      "succeeded without a captured amount or provider id, or with an amount still capturable",
      "status = 'succeeded' AND (amount_captured <= 0 OR amount_capturable <> 0 OR provider_payment_id IS NULL)",
    ],
    [
      "captured or refunded money without having succeeded",
      "status <> 'succeeded' AND (amount_captured <> 0 OR amount_refunded <> 0)",
    ],
    ["requires_capture with nothing to capture", "status = 'requires_capture' AND amount_capturable <= 0"],
    [
      "holding a capturable amount outside requires_capture",
      "status NOT IN ('requires_capture', 'processing') AND amount_capturable <> 0",
    ],
    ["failed without a failure", "status = 'failed' AND failure IS NULL"],
    ["requires_action without a next action", "status = 'requires_action' AND next_action IS NULL"],
    ["processing without processing_since", "status = 'processing' AND processing_since IS NULL"],
  ];
  if (options.allowProcessing === false) checks.push(["still processing", "status = 'processing'"]);
  for (const [what, where] of checks) {
    for (const r of await rows<{ id: string; status: string }>(
      db,
      `SELECT id, status FROM payments WHERE ${where}`,
    )) {
      report(`payment ${r.id} (${r.status}) is ${what}`);
    }
  }
}

async function checkRefunds(db: Queryable, report: Report, options: InvariantOptions) {
  for (const r of await rows<{ id: string; recorded: number; reserved: number; captured: number }>(
    db,
    `SELECT p.id, p.amount_refunded AS recorded, p.amount_captured AS captured,
            COALESCE(sum(r.amount) FILTER (WHERE r.status IN ('pending', 'succeeded')), 0)::bigint AS reserved
     FROM payments p LEFT JOIN refunds r ON r.payment_id = p.id
     GROUP BY p.id
     HAVING p.amount_refunded <> COALESCE(sum(r.amount) FILTER (WHERE r.status IN ('pending', 'succeeded')), 0)
         OR COALESCE(sum(r.amount) FILTER (WHERE r.status IN ('pending', 'succeeded')), 0) > p.amount_captured`,
  )) {
    report(
      `payment ${r.id} records ${r.recorded} refunded of ${r.captured} captured; its refunds reserve ${r.reserved}`,
    );
  }
  for (const r of await rows<{ id: string; status: string }>(
    db,
    `SELECT r.id, p.status FROM refunds r JOIN payments p ON p.id = r.payment_id
     WHERE p.status <> 'succeeded' OR r.currency <> p.currency OR r.merchant_id <> p.merchant_id`,
  )) {
    report(`refund ${r.id} belongs to a payment that is ${r.status} or of another currency or merchant`);
  }
  if (options.allowPendingRefunds === false) {
    for (const r of await rows<{ id: string }>(db, "SELECT id FROM refunds WHERE status = 'pending'")) {
      report(`refund ${r.id} is still pending`);
    }
  }
}

/**
 * The sandbox's books against ours. A charge is a succeeded authorize or completion (asynchronous and 3-D Secure
 * payments complete after a non-final authorize), or a capture of an authorization.
 */
async function checkLedger(db: Queryable, report: Report) {
  const ledger = await rows<{
    payment_id: string;
    charges: number;
    charged: number;
    refunded: number;
    status: string | null;
    captured: number | null;
    order_id: string | null;
    succeeded_refunds: number;
    pending_refunds: number;
  }>(
    db,
    `WITH books AS (
       SELECT payment_id,
              count(*) FILTER (WHERE (operation IN ('authorize', 'complete') AND status = 'succeeded') OR operation = 'capture')::int AS charges,
              COALESCE(sum(amount) FILTER (WHERE (operation IN ('authorize', 'complete') AND status = 'succeeded') OR operation = 'capture'), 0)::bigint AS charged,
              COALESCE(sum(amount) FILTER (WHERE operation = 'refund' AND status = 'succeeded'), 0)::bigint AS refunded
       FROM sandbox_charges GROUP BY payment_id
     ), ours AS (
       SELECT payment_id,
              COALESCE(sum(amount) FILTER (WHERE status = 'succeeded'), 0)::bigint AS succeeded_refunds,
              COALESCE(sum(amount) FILTER (WHERE status = 'pending'), 0)::bigint AS pending_refunds
       FROM refunds GROUP BY payment_id
     )
     SELECT b.payment_id, b.charges, b.charged, b.refunded, p.status, p.amount_captured AS captured, p.order_id,
            COALESCE(o.succeeded_refunds, 0)::bigint AS succeeded_refunds, COALESCE(o.pending_refunds, 0)::bigint AS pending_refunds
     FROM books b LEFT JOIN payments p ON p.id = b.payment_id LEFT JOIN ours o ON o.payment_id = b.payment_id`,
  );
  const chargesPerOrder = new Map<string, number>();
  for (const r of ledger) {
    if (r.status === null) {
      report(`the provider has records of payment ${r.payment_id}, which does not exist here`);
      continue;
    }
    if (r.charges > 1) report(`payment ${r.payment_id} was charged ${r.charges} times at the provider`);
    if (r.order_id && r.charges > 0)
      chargesPerOrder.set(r.order_id, (chargesPerOrder.get(r.order_id) ?? 0) + r.charges);
    if (r.status === "succeeded" && r.charged !== r.captured) {
      report(`payment ${r.payment_id} is succeeded for ${r.captured}; the provider charged ${r.charged}`);
    }
    if (r.status !== "succeeded" && r.status !== "processing" && r.charged !== 0) {
      report(`payment ${r.payment_id} is ${r.status}, yet the provider charged ${r.charged}`);
    }
    const low = r.succeeded_refunds;
    const high = r.succeeded_refunds + r.pending_refunds;
    if (r.refunded < low || r.refunded > high) {
      report(
        `payment ${r.payment_id}: the provider refunded ${r.refunded}, our refunds are ${low} succeeded and ${r.pending_refunds} pending`,
      );
    }
  }
  for (const [order, charges] of chargesPerOrder) {
    if (charges > 1) report(`order ${order} was charged ${charges} times at the provider`);
  }
  // A succeeded sandbox payment the provider never charged: money recorded that does not exist.
  for (const r of await rows<{ id: string }>(
    db,
    `SELECT p.id FROM payments p WHERE p.provider = 'sandbox' AND p.status = 'succeeded'
       AND NOT EXISTS (SELECT 1 FROM sandbox_charges s WHERE s.payment_id = p.id)`,
  )) {
    report(`payment ${r.id} is succeeded but the provider has no record of it`);
  }
}

interface AuditRow {
  object_type: "order" | "payment" | "refund";
  object_id: string;
  action: string;
  status_before: string | null;
  status_after: string | null;
}

const CURRENT_STATUS = `
  SELECT 'order' AS object_type, id AS object_id, status, merchant_id FROM orders
  UNION ALL SELECT 'payment', id, status, merchant_id FROM payments
  UNION ALL SELECT 'refund', id, status, merchant_id FROM refunds`;

async function checkAuditChains(db: Queryable, report: Report) {
  const trail = await rows<AuditRow & { id: number }>(
    db,
    "SELECT id, object_type, object_id, action, status_before, status_after FROM audit_log ORDER BY object_id, id",
  );
  const current = new Map<string, { status: string; type: string }>();
  for (const r of await rows<{ object_type: string; object_id: string; status: string }>(
    db,
    CURRENT_STATUS,
  )) {
    current.set(r.object_id, { status: r.status, type: r.object_type });
  }
  const last = new Map<string, string | null>();
  for (const row of trail) {
    const known = last.has(row.object_id);
    const previous = last.get(row.object_id) ?? null;
    if (!known && row.status_before !== null) {
      report(`${row.object_type} ${row.object_id}: its first audit row (${row.action}) does not create it`);
    }
    if (known && row.status_before !== previous) {
      report(
        `${row.object_type} ${row.object_id}: audit row ${row.action} starts from ${row.status_before}, the trail was at ${previous}`,
      );
    }
    if (known && row.object_type === "payment" && previous && TERMINAL.has(previous)) {
      report(`payment ${row.object_id} changed after reaching ${previous} (${row.action})`);
    }
    if (
      row.object_type === "payment" &&
      row.status_before !== null &&
      row.status_after !== null &&
      !PAYMENT_TRANSITIONS[row.status_before as PaymentStatus]?.includes(row.status_after as PaymentStatus)
    ) {
      report(
        `payment ${row.object_id} moved ${row.status_before} → ${row.status_after}, which is not allowed`,
      );
    }
    last.set(row.object_id, row.status_after);
  }
  for (const [id, { status, type }] of current) {
    if (!last.has(id)) report(`${type} ${id} has no audit trail`);
    else if (last.get(id) !== status) {
      report(`${type} ${id} is ${status}, its audit trail ends at ${last.get(id)}`);
    }
  }
  for (const id of last.keys()) {
    if (!current.has(id)) report(`audit rows name ${id}, which does not exist`);
  }
}

/** The event an audited change announces; undefined for the changes that announce none. */
export function eventOf(row: Pick<AuditRow, "object_type" | "status_before" | "status_after">) {
  const { object_type: type, status_before: before, status_after: after } = row;
  if (type === "order") return before === null ? "order.created" : `order.${after}`;
  if (type === "refund") return before === null ? undefined : `refund.${after}`;
  if (before === null) return "payment.created";
  // Putting a payment back after a provider definitely did not act is not news to anyone.
  if (after === "requires_confirmation") return undefined;
  return `payment.${after}`;
}

/** The status the object has in the data of an event of this type. */
function statusOfEvent(type: string): string {
  const [object, verb] = type.split(".") as [string, string];
  if (verb === "created") return object === "order" ? "pending" : "requires_confirmation";
  return verb;
}

async function checkOutbox(db: Queryable, report: Report) {
  const expected = new Map<string, number>();
  for (const row of await rows<AuditRow>(
    db,
    "SELECT object_type, object_id, action, status_before, status_after FROM audit_log",
  )) {
    const event = eventOf(row);
    if (!event) continue;
    const key = `${row.object_id} ${event}`;
    expected.set(key, (expected.get(key) ?? 0) + 1);
  }
  const actual = new Map<string, number>();
  const events = await rows<{
    id: string;
    type: string;
    subject: string;
    merchant_id: string;
    status: string | null;
    owner: string | null;
  }>(
    db,
    `SELECT e.id, e.type, e.subject, e.merchant_id, e.data->>'status' AS status, s.merchant_id AS owner
     FROM outbox e LEFT JOIN (${CURRENT_STATUS}) s ON s.object_id = e.subject`,
  );
  for (const e of events) {
    const type = e.type.replace(/^io\.payment-service\./, "");
    const key = `${e.subject} ${type}`;
    actual.set(key, (actual.get(key) ?? 0) + 1);
    if (e.owner === null) report(`event ${e.id} (${type}) is about ${e.subject}, which does not exist`);
    else if (e.owner !== e.merchant_id) report(`event ${e.id} (${type}) is addressed to another merchant`);
    if (e.status !== statusOfEvent(type)) report(`event ${e.id} (${type}) carries the object as ${e.status}`);
  }
  for (const [key, n] of expected) {
    const got = actual.get(key) ?? 0;
    if (got !== n) report(`${key}: ${n} audited change(s), ${got} outbox event(s)`);
  }
  for (const [key, n] of actual) {
    if (!expected.has(key)) report(`${key}: ${n} outbox event(s) without an audited change`);
  }
}

async function checkIdempotency(db: Queryable, report: Report, options: InvariantOptions) {
  for (const r of await rows<{ merchant_id: string; key: string; response_status: number }>(
    db,
    "SELECT merchant_id, key, response_status FROM idempotency_keys WHERE response_status >= 500",
  )) {
    report(`idempotency key ${r.merchant_id}/${r.key} stored a ${r.response_status} answer`);
  }
  if (options.allowInFlightKeys === false) {
    for (const r of await rows<{ merchant_id: string; key: string }>(
      db,
      "SELECT merchant_id, key FROM idempotency_keys WHERE response_status IS NULL",
    )) {
      report(`idempotency key ${r.merchant_id}/${r.key} is still in flight`);
    }
  }
  const answers = await rows<{ merchant_id: string; key: string; response_body: string }>(
    db,
    "SELECT merchant_id, key, response_body FROM idempotency_keys WHERE response_status BETWEEN 200 AND 299",
  );
  const owners = new Map<string, string>();
  for (const r of await rows<{ object_id: string; merchant_id: string }>(db, CURRENT_STATUS)) {
    owners.set(r.object_id, r.merchant_id);
  }
  for (const answer of answers) {
    let body: { id?: unknown; object?: unknown };
    try {
      body = JSON.parse(answer.response_body);
    } catch {
      report(`idempotency key ${answer.merchant_id}/${answer.key} stored an answer that is not JSON`);
      continue;
    }
    if (typeof body.id !== "string" || !["order", "payment", "refund"].includes(String(body.object)))
      continue;
    const owner = owners.get(body.id);
    if (owner === undefined) {
      report(`idempotency key ${answer.merchant_id}/${answer.key} answered ${body.id}, which does not exist`);
    } else if (owner !== answer.merchant_id) {
      report(`idempotency key ${answer.merchant_id}/${answer.key} answered another merchant's ${body.id}`);
    }
  }
}
