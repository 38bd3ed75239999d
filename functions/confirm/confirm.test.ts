import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orderWithPayment, startTestService, type TestService } from "../../test/support/harness.ts";

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(() => t.close());

const charges = async (paymentId: string) =>
  (
    await t.service.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM sandbox_charges WHERE payment_id = $1 AND operation = 'authorize'",
      [paymentId],
    )
  ).rows[0]?.n;

describe("POST /v1/payments/:id/confirm", () => {
  it("charges a payment and marks its order paid", async () => {
    const { order, payment } = await orderWithPayment(t, { amount: 2500, currency: "EUR" });
    const res = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded", amount_captured: 2500, failure: null });
    expect(res.body.provider_payment_id).toBeTruthy();
    const paid = await t.call("GET", `/v1/orders/${order.id}`);
    expect(paid.body).toMatchObject({ status: "paid", amount_paid: 2500 });
  });

  it("answers a decline with 200 and a failure", async () => {
    const { payment } = await orderWithPayment(t, { payment_method: "pm_card_insufficientFunds" });
    const res = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("failed");
    expect(res.body.failure.code).toBe("insufficient_funds");
  });

  it("takes a new payment method on confirm", async () => {
    const { payment } = await orderWithPayment(t, { payment_method: "pm_card_chargeDeclined" });
    const res = await t.call("POST", `/v1/payments/${payment.id}/confirm`, {
      body: { payment_method: "pm_card_mir" },
    });
    expect(res.body).toMatchObject({ status: "succeeded", payment_method: "pm_card_mir" });
  });

  it("502 provider_unavailable leaves the payment requires_confirmation", async () => {
    const { payment } = await orderWithPayment(t, { payment_method: "pm_card_providerError" });
    const res = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
    expect(res.status).toBe(502);
    expect(res.body.code).toBe("provider_unavailable");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("requires_confirmation");
  });

  it("50 concurrent confirms charge once; every caller sees the result or 409", async () => {
    const { payment } = await orderWithPayment(t);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => t.call("POST", `/v1/payments/${payment.id}/confirm`)),
    );
    const ok = results.filter((r) => r.status === 200);
    expect(ok.length).toBe(1);
    expect(ok[0]?.body.status).toBe("succeeded");
    for (const r of results) {
      expect([200, 409]).toContain(r.status);
      if (r.status === 409) expect(r.body.code).toBe("invalid_state");
    }
    expect(await charges(payment.id)).toBe(1);
    const audit = await t.service.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM audit_log WHERE object_id = $1 AND status_after = 'succeeded'",
      [payment.id],
    );
    expect(audit.rows[0]?.n).toBe(1);
  });

  it("two payments of one order confirmed at once: one charge, one succeeded", async () => {
    const { order, payment } = await orderWithPayment(t);
    const second = await t.call("POST", "/v1/payments", {
      body: { order_id: order.id, payment_method: "pm_card_visa" },
    });
    const [a, b] = await Promise.all([
      t.call("POST", `/v1/payments/${payment.id}/confirm`),
      t.call("POST", `/v1/payments/${second.body.id}/confirm`),
    ]);
    expect([a?.status, b?.status].sort()).toEqual([200, 409]);
    const succeeded = await t.service.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM payments WHERE order_id = $1 AND status = 'succeeded'",
      [order.id],
    );
    expect(succeeded.rows[0]?.n).toBe(1);
    expect(((await charges(payment.id)) ?? 0) + ((await charges(second.body.id)) ?? 0)).toBe(1);
  });

  it("writes an audit row and an outbox event for each change", async () => {
    const { payment } = await orderWithPayment(t);
    await t.call("POST", `/v1/payments/${payment.id}/confirm`, {
      headers: { "X-Request-Id": "req-audit-1" },
    });
    const audit = await t.service.db.query<{
      action: string;
      status_before: string;
      status_after: string;
      request_id: string;
    }>(
      "SELECT action, status_before, status_after, request_id FROM audit_log WHERE object_id = $1 ORDER BY id",
      [payment.id],
    );
    expect(audit.rows.map((r) => [r.status_before, r.status_after])).toEqual([
      [null, "requires_confirmation"],
      ["requires_confirmation", "processing"],
      ["processing", "succeeded"],
    ]);
    expect(audit.rows[2]?.request_id).toBe("req-audit-1");
    const events = await t.service.db.query<{ type: string }>(
      "SELECT type FROM outbox WHERE subject = $1 ORDER BY seq",
      [payment.id],
    );
    expect(events.rows.map((r) => r.type)).toEqual([
      "io.payment-service.payment.created",
      "io.payment-service.payment.processing",
      "io.payment-service.payment.succeeded",
    ]);
  });
});
