import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toProviderPayment } from "../../lib/payments/provider-payment.ts";
import type { PaymentRow } from "../../lib/payments/serialize.ts";
import { recordOperation } from "../../lib/providers/sandbox-ledger.ts";
import { metrics } from "../../lib/telemetry/metrics.ts";
import { orderWithPayment, startTestService, type TestService } from "../../test/support/harness.ts";

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(() => t.close());

describe("POST /v1/payments/:id/cancel", () => {
  it("cancels with a reason", async () => {
    const { payment } = await orderWithPayment(t);
    const res = await t.call("POST", `/v1/payments/${payment.id}/cancel`, {
      body: { reason: "requested_by_customer" },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "canceled", cancellation_reason: "requested_by_customer" });
  });

  it("rejects an unknown reason naming the field", async () => {
    const { payment } = await orderWithPayment(t);
    const res = await t.call("POST", `/v1/payments/${payment.id}/cancel`, { body: { reason: "because" } });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].path).toBe("reason");
  });

  it("voids an authorization at the provider", async () => {
    const { payment } = await orderWithPayment(t, { capture_method: "manual" });
    expect((await t.call("POST", `/v1/payments/${payment.id}/confirm`)).body.status).toBe("requires_capture");
    const res = await t.call("POST", `/v1/payments/${payment.id}/cancel`);
    expect(res.body.status).toBe("canceled");
    const voids = await t.service.db.query(
      "SELECT 1 FROM sandbox_charges WHERE payment_id = $1 AND operation = 'cancel'",
      [payment.id],
    );
    expect(voids.rowCount).toBe(1);
  });
  it("counts and logs a provider that refuses the void: it may have charged the customer", async () => {
    const { payment } = await orderWithPayment(t, { payment_method: "pm_card_threeDSecureRequired" });
    const confirmed = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
    expect(confirmed.body.status).toBe("requires_action");
    // The customer finishes 3-D Secure at the provider, whose news has not reached us yet.
    const { rows } = await t.service.db.query<PaymentRow>("SELECT * FROM payments WHERE id = $1", [
      payment.id,
    ]);
    const row = rows[0] as PaymentRow;
    await recordOperation(
      t.service.db,
      `${payment.id}:complete`,
      toProviderPayment(row),
      "complete",
      row.amount,
      "succeeded",
    );
    const refused = { provider: "sandbox", kind: "cancel_refused" };
    const before = await discrepancies(refused);

    const res = await t.call("POST", `/v1/payments/${payment.id}/cancel`);

    expect(res.body.status).toBe("canceled");
    expect(await discrepancies(refused)).toBe(before + 1);
  });
});

async function discrepancies(labels: { provider: string; kind: string }): Promise<number> {
  const { values } = await metrics.providerDiscrepancies.get();
  return (
    values.find((v) => v.labels.provider === labels.provider && v.labels.kind === labels.kind)?.value ?? 0
  );
}

describe("POST /v1/orders/:id/cancel", () => {
  it("cancels the order and its open payments", async () => {
    const { order, payment } = await orderWithPayment(t);
    const other = await t.call("POST", "/v1/payments", {
      body: { order_id: order.id, payment_method: "pm_card_mir" },
    });
    const res = await t.call("POST", `/v1/orders/${order.id}/cancel`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("canceled");
    for (const id of [payment.id, other.body.id]) {
      expect((await t.call("GET", `/v1/payments/${id}`)).body.status).toBe("canceled");
    }
  });

  it("refuses a paid order and an order with a payment in flight", async () => {
    const paid = await orderWithPayment(t);
    await t.call("POST", `/v1/payments/${paid.payment.id}/confirm`);
    const res = await t.call("POST", `/v1/orders/${paid.order.id}/cancel`);
    expect(res.status).toBe(409);
    expect(res.body.code).toBe("invalid_state");

    const inFlight = await orderWithPayment(t, { payment_method: "pm_card_providerTimeout" });
    await t.call("POST", `/v1/payments/${inFlight.payment.id}/confirm`);
    expect((await t.call("POST", `/v1/orders/${inFlight.order.id}/cancel`)).status).toBe(409);
  });

  it("refuses a second cancel", async () => {
    const { order } = await orderWithPayment(t);
    expect((await t.call("POST", `/v1/orders/${order.id}/cancel`)).status).toBe(200);
    expect((await t.call("POST", `/v1/orders/${order.id}/cancel`)).status).toBe(409);
  });

  it("cancel racing confirm: never a canceled order with a charged payment", async () => {
    for (let i = 0; i < 10; i++) {
      const { order, payment } = await orderWithPayment(t);
      await Promise.all([
        t.call("POST", `/v1/payments/${payment.id}/confirm`),
        t.call("POST", `/v1/orders/${order.id}/cancel`),
      ]);
      const o = (await t.call("GET", `/v1/orders/${order.id}`)).body;
      const p = (await t.call("GET", `/v1/payments/${payment.id}`)).body;
      if (o.status === "canceled") expect(p.status).toBe("canceled");
      else expect([o.status, p.status]).toEqual(["paid", "succeeded"]);
    }
  });
});
