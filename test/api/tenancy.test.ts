import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orderWithPayment, startTestService, type TestService } from "../support/harness.ts";

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(() => t.close());

describe("tenant isolation", () => {
  it("answers another merchant's objects exactly like missing ones", async () => {
    const { order, payment } = await orderWithPayment(t, { merchant: "acct_alice" });
    const missingOrder = `ord_${"f".repeat(32)}`;
    const missingPayment = `pay_${"f".repeat(32)}`;
    const pairs: [string, string, string][] = [
      ["GET", `/v1/orders/${order.id}`, `/v1/orders/${missingOrder}`],
      ["GET", `/v1/payments/${payment.id}`, `/v1/payments/${missingPayment}`],
      ["POST", `/v1/payments/${payment.id}/confirm`, `/v1/payments/${missingPayment}/confirm`],
      ["POST", `/v1/payments/${payment.id}/cancel`, `/v1/payments/${missingPayment}/cancel`],
      ["POST", `/v1/payments/${payment.id}/capture`, `/v1/payments/${missingPayment}/capture`],
      ["POST", `/v1/orders/${order.id}/cancel`, `/v1/orders/${missingOrder}/cancel`],
    ];
    for (const [method, theirs, missing] of pairs) {
      const a = await t.call(method, theirs, { merchant: "acct_mallory" });
      const b = await t.call(method, missing, { merchant: "acct_mallory" });
      expect(a.status, `${method} ${theirs}`).toBe(404);
      expect(a.body.code).toBe("not_found");
      const { request_id: _a, ...bodyA } = a.body;
      const { request_id: _b, ...bodyB } = b.body;
      expect(bodyA).toEqual(bodyB);
    }
    // Creating a payment on someone else's order, or listing by their order id, shows nothing either.
    const pay = await t.call("POST", "/v1/payments", {
      merchant: "acct_mallory",
      body: { order_id: order.id, payment_method: "pm_card_visa" },
    });
    expect(pay.status).toBe(404);
    const list = await t.call("GET", `/v1/payments?order_id=${order.id}`, { merchant: "acct_mallory" });
    expect(list.body.data).toEqual([]);
    const orders = await t.call("GET", "/v1/orders", { merchant: "acct_mallory" });
    expect(orders.body.data.find((o: { id: string }) => o.id === order.id)).toBeUndefined();
    // And the owner still sees it untouched.
    const mine = await t.call("GET", `/v1/payments/${payment.id}`, { merchant: "acct_alice" });
    expect(mine.body.status).toBe("requires_confirmation");
  });

  it("scopes idempotency keys per merchant", async () => {
    const body = { amount: 100, currency: "EUR" };
    const a = await t.call("POST", "/v1/orders", {
      merchant: "acct_alice",
      body,
      idempotencyKey: "shared-key",
    });
    const b = await t.call("POST", "/v1/orders", {
      merchant: "acct_bob",
      body,
      idempotencyKey: "shared-key",
    });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.headers.get("idempotent-replayed")).toBeNull();
    expect(a.body.id).not.toBe(b.body.id);
  });
});
