import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Queryable } from "../../lib/db/db.ts";
import { orderWithPayment, startTestService, type TestService } from "../support/harness.ts";
import { checkInvariants } from "./invariants.ts";

/**
 * The invariant checker itself: silent on a database the service wrote through every kind of flow, and loud about
 * each kind of damage, one at a time. Each damage is done in a transaction that is rolled back, with triggers off
 * (they would refuse most of it: that is the database enforcing the same rules).
 */
let t: TestService;
let ids: { paid: string; paidOrder: string; refunded: string; canceled: string; held: string };

beforeAll(async () => {
  t = await startTestService();
  const paid = await orderWithPayment(t, { amount: 1_500 });
  await t.call("POST", `/v1/payments/${paid.payment.id}/confirm`);
  const refunded = await orderWithPayment(t, { amount: 2_000, currency: "EUR" });
  await t.call("POST", `/v1/payments/${refunded.payment.id}/confirm`);
  await t.call("POST", "/v1/refunds", { body: { payment_id: refunded.payment.id, amount: 500 } });
  const canceled = await orderWithPayment(t);
  await t.call("POST", `/v1/orders/${canceled.order.id}/cancel`);
  const declined = await orderWithPayment(t, { payment_method: "pm_card_chargeDeclined" });
  await t.call("POST", `/v1/payments/${declined.payment.id}/confirm`);
  const held = await orderWithPayment(t, { capture_method: "manual" });
  await t.call("POST", `/v1/payments/${held.payment.id}/confirm`);
  const retried = await orderWithPayment(t, { payment_method: "pm_card_providerError" });
  await t.call("POST", `/v1/payments/${retried.payment.id}/confirm`);
  await t.call("POST", `/v1/payments/${retried.payment.id}/confirm`, {
    body: { payment_method: "pm_card_visa" },
    idempotencyKey: "retry-1",
  });
  ids = {
    paid: paid.payment.id,
    paidOrder: paid.order.id,
    refunded: refunded.payment.id,
    canceled: canceled.payment.id,
    held: held.payment.id,
  };
});
afterAll(() => t.close());

class RolledBack extends Error {}

/** Damages the database, checks, and undoes the damage. */
async function violationsAfter(damage: (tx: Queryable) => Promise<unknown>): Promise<string[]> {
  let found: string[] = [];
  await t.service.db
    .transaction(async (tx) => {
      await tx.query("SET LOCAL session_replication_role = replica");
      await damage(tx);
      found = await checkInvariants(tx);
      throw new RolledBack();
    })
    .catch((error) => {
      if (!(error instanceof RolledBack)) throw error;
    });
  return found;
}

describe("checkInvariants", () => {
  it("finds nothing wrong with what the service wrote", async () => {
    expect(await checkInvariants(t.service.db)).toEqual([]);
    expect(
      await checkInvariants(t.service.db, { allowProcessing: false, allowPendingRefunds: false }),
    ).toEqual([]);
  });

  const cases: [string, (tx: Queryable) => Promise<unknown>, RegExp][] = [
    [
      "a second charge at the provider",
      (tx) =>
        tx.query(
          `INSERT INTO sandbox_charges (idempotency_key, provider_payment_id, payment_id, operation, amount, currency, status)
           VALUES ('dup', 'sbx_dup', $1, 'authorize', 1500, 'USD', 'succeeded')`,
          [ids.paid],
        ),
      /charged 2 times at the provider/,
    ],
    [
      "a charge for a canceled payment",
      (tx) =>
        tx.query(
          `INSERT INTO sandbox_charges (idempotency_key, provider_payment_id, payment_id, operation, amount, currency, status)
           VALUES ('late', 'sbx_late', $1, 'authorize', 1999, 'USD', 'succeeded')`,
          [ids.canceled],
        ),
      /is canceled, yet the provider charged 1999/,
    ],
    [
      "a recorded capture the provider never made",
      (tx) => tx.query("UPDATE payments SET amount_captured = 1400 WHERE id = $1", [ids.paid]),
      /succeeded for 1400; the provider charged 1500/,
    ],
    [
      "an order left pending after its payment succeeded",
      (tx) =>
        tx.query("UPDATE orders SET status = 'pending', amount_paid = 0 WHERE id = $1", [ids.paidOrder]),
      /order .* is pending with amount_paid 0, its succeeded payment captured 1500/,
    ],
    [
      "two succeeded payments of one order",
      async (tx) => {
        await tx.query("DROP INDEX payments_one_active_per_order");
        await tx.query(
          `INSERT INTO payments (id, merchant_id, order_id, amount, currency, status, provider, payment_method,
                                 amount_captured, provider_payment_id)
           SELECT 'pay_' || repeat('e', 32), merchant_id, order_id, amount, currency, 'succeeded', provider,
                  payment_method, amount_captured, 'sbx_x' FROM payments WHERE id = $1`,
          [ids.paid],
        );
      },
      /has 2 succeeded payments/,
    ],
    [
      "refunds above what was captured",
      (tx) => tx.query("UPDATE refunds SET amount = 2500 WHERE payment_id = $1", [ids.refunded]),
      /records 500 refunded of 2000 captured; its refunds reserve 2500/,
    ],
    [
      "a change without its audit row",
      (tx) =>
        tx.query("DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log WHERE object_id = $1)", [
          ids.held,
        ]),
      /is requires_capture, its audit trail ends at processing/,
    ],
    [
      "a change without its outbox event",
      (tx) =>
        tx.query("DELETE FROM outbox WHERE subject = $1 AND type = 'io.payment-service.payment.succeeded'", [
          ids.paid,
        ]),
      /payment.succeeded: 1 audited change\(s\), 0 outbox event\(s\)/,
    ],
    [
      "an event announced twice",
      (tx) =>
        tx.query(
          `INSERT INTO outbox (id, type, source, subject, partition_key, merchant_id, data)
           SELECT 'evt_dup', type, source, subject, partition_key, merchant_id, data FROM outbox
           WHERE subject = $1 AND type = 'io.payment-service.payment.succeeded'`,
          [ids.paid],
        ),
      /payment.succeeded: 1 audited change\(s\), 2 outbox event\(s\)/,
    ],
    [
      "a terminal payment moved on",
      async (tx) => {
        await tx.query("UPDATE payments SET status = 'canceled' WHERE id = $1", [ids.canceled]);
        await tx.query(
          `INSERT INTO audit_log (actor_type, actor_id, action, object_type, object_id, status_before, status_after)
           VALUES ('system', 'x', 'payment.revive', 'payment', $1, 'canceled', 'canceled')`,
          [ids.canceled],
        );
      },
      /changed after reaching canceled/,
    ],
    [
      "a stored 5xx answer",
      (tx) =>
        tx.query(
          `INSERT INTO idempotency_keys (merchant_id, key, request_hash, response_status, response_body, expires_at)
           VALUES ('acct_test', 'five-hundred', 'h', 503, '', now() + interval '1 day')`,
        ),
      /stored a 503 answer/,
    ],
    [
      "a stored answer naming an object that was never committed",
      (tx) =>
        tx.query(
          `INSERT INTO idempotency_keys (merchant_id, key, request_hash, response_status, response_body, expires_at)
           VALUES ('acct_test', 'ghost', 'h', 201, $1, now() + interval '1 day')`,
          [JSON.stringify({ id: `ord_${"9".repeat(32)}`, object: "order" })],
        ),
      /answered ord_9+, which does not exist/,
    ],
    [
      "a status change nobody audited",
      (tx) =>
        tx.query("UPDATE payments SET status = 'processing', processing_since = now() WHERE id = $1", [
          ids.held,
        ]),
      /audit trail ends at requires_capture/,
    ],
  ];

  it.each(cases)("reports %s", async (_what, damage, expected) => {
    const violations = await violationsAfter(damage);
    expect(violations.join("\n")).toMatch(expected);
  });
});
