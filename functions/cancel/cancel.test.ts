import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toProviderPayment } from "../../lib/payments/provider-payment.ts";
import type { PaymentRow } from "../../lib/payments/serialize.ts";
import {
  type PaymentProvider,
  ProviderError,
  ProviderRequestRejected,
} from "../../lib/providers/provider.ts";
import { recordOperation } from "../../lib/providers/sandbox-ledger.ts";
import { metrics } from "../../lib/telemetry/metrics.ts";
import { withProviders } from "../../test/events/support.ts";
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
  it("cancels a payment waiting for 3-D Secure at its provider first", async () => {
    const { payment } = await orderWithPayment(t, { payment_method: "pm_card_threeDSecureRequired" });
    expect((await t.call("POST", `/v1/payments/${payment.id}/confirm`)).body.status).toBe("requires_action");

    const res = await t.call("POST", `/v1/payments/${payment.id}/cancel`);

    expect(res.body.status).toBe("canceled");
    const ledger = await t.service.db.query<{ operation: string }>(
      "SELECT operation FROM sandbox_charges WHERE payment_id = $1 ORDER BY created_at",
      [payment.id],
    );
    expect(ledger.rows.map((r) => r.operation)).toEqual(["authorize", "cancel"]);
  });

  it("refuses to cancel a payment whose customer completed 3-D Secure at the provider meanwhile, and settles it", async () => {
    const { order, payment } = await orderWithPayment(t, { payment_method: "pm_card_threeDSecureRequired" });
    expect((await t.call("POST", `/v1/payments/${payment.id}/confirm`)).body.status).toBe("requires_action");
    // The customer finishes 3-D Secure at the provider, whose news has not reached us yet.
    await recordAtSandbox(payment.id, "complete", "succeeded");

    const res = await t.call("POST", `/v1/payments/${payment.id}/cancel`);

    expect(res.status).toBe(409);
    expect(res.body.code).toBe("invalid_state");
    expect(res.body.detail).toContain("succeeded");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("succeeded");
    expect((await t.call("GET", `/v1/orders/${order.id}`)).body.status).toBe("paid");
    // The order's cancel asks the provider too, and is refused for the same reason.
    expect((await t.call("POST", `/v1/orders/${order.id}/cancel`)).status).toBe(409);
  });

  it("asks the provider first also when a confirm reached 3-D Secure just before the cancel's change", async () => {
    const { payment } = await orderWithPayment(t, { payment_method: "pm_card_threeDSecureRequired" });
    const db = t.service.db;
    let armed = true;
    // The cancel's request found the payment requires_confirmation; right before its transaction the confirm
    // runs and stops at 3-D Secure.
    t.service.db = new Proxy(db, {
      get(target, property) {
        if (property === "transaction") {
          return async (fn: Parameters<typeof db.transaction>[0]) => {
            if (armed) {
              armed = false;
              const confirmed = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
              expect(confirmed.body.status).toBe("requires_action");
            }
            return target.transaction(fn);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    try {
      const res = await t.call("POST", `/v1/payments/${payment.id}/cancel`);
      expect(armed, "the cancel's transaction was seen").toBe(false);
      expect(res.body.status).toBe("canceled");
    } finally {
      t.service.db = db;
    }
    // Canceled at the provider under the provider-first key, not voided after a cancel here.
    const ledger = await db.query<{ operation: string; idempotency_key: string }>(
      "SELECT operation, idempotency_key FROM sandbox_charges WHERE payment_id = $1 ORDER BY created_at",
      [payment.id],
    );
    expect(ledger.rows.map((r) => r.operation)).toEqual(["authorize", "cancel"]);
    expect(ledger.rows[1]?.idempotency_key).toContain(":cancel-first:");
  });

  it("changes nothing when the provider cannot be reached: 502, and the payment still waits", async () => {
    let reachable = false;
    const { payment } = await waitingAtStripeDouble({
      cancel: async () => {
        if (!reachable) throw new ProviderError("stripe", "connection reset", false);
        return { status: "canceled", providerPaymentId: "pi_3ds" };
      },
    });

    const down = await t.call("POST", `/v1/payments/${payment.id}/cancel`);
    expect(down.status).toBe(502);
    expect(down.body.code).toBe("provider_unavailable");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("requires_action");

    reachable = true;
    expect((await t.call("POST", `/v1/payments/${payment.id}/cancel`)).body.status).toBe("canceled");
  });

  it("refuses while the provider keeps the payment open for its customer (409), and changes nothing", async () => {
    const { order, payment } = await waitingAtStripeDouble({
      cancel: async () => {
        throw new ProviderRequestRejected("stripe", "payment is pending");
      },
      retrieve: async () => ({
        status: "requires_action",
        providerPaymentId: "pi_3ds",
        nextAction: REDIRECT,
      }),
    });
    for (const path of [`/v1/payments/${payment.id}/cancel`, `/v1/orders/${order.id}/cancel`]) {
      const res = await t.call("POST", path);
      expect(res.status, path).toBe(409);
      expect(res.body.detail, path).toContain("while its customer authenticates");
    }
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("requires_action");
    expect((await t.call("GET", `/v1/orders/${order.id}`)).body.status).toBe("pending");
  });

  it("cancels an authorization the customer completed meanwhile: applied, canceled here, voided there", async () => {
    const keys: string[] = [];
    const { payment } = await waitingAtStripeDouble({
      cancel: async (_payment, key) => {
        keys.push(key);
        if (key.includes(":cancel-first:")) throw new ProviderRequestRejected("stripe", "not cancelable");
        return { status: "canceled", providerPaymentId: "pi_3ds" };
      },
      retrieve: async () => ({
        status: "requires_capture",
        providerPaymentId: "pi_3ds",
        amountCapturable: 1999,
      }),
    });

    const res = await t.call("POST", `/v1/payments/${payment.id}/cancel`);

    expect(res.body.status).toBe("canceled");
    // Asked first under a key of its own, then the authorization voided under the payment's cancel key.
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(`${payment.id}:cancel:1`);
    const trail = await t.service.db.query<{ status_after: string }>(
      "SELECT status_after FROM audit_log WHERE object_id = $1 ORDER BY id",
      [payment.id],
    );
    expect(trail.rows.map((r) => r.status_after).slice(-3)).toEqual([
      "processing",
      "requires_capture",
      "canceled",
    ]);
  });

  it("counts and logs a provider that refuses to void an authorization canceled here", async () => {
    const { payment } = await orderWithPayment(t, { capture_method: "manual" });
    expect((await t.call("POST", `/v1/payments/${payment.id}/confirm`)).body.status).toBe("requires_capture");
    // Captured at the provider behind our back (a second system holding the same keys, say).
    await recordAtSandbox(payment.id, "capture", "succeeded");
    const refused = { provider: "sandbox", kind: "cancel_refused" };
    const before = await discrepancies(refused);

    const res = await t.call("POST", `/v1/payments/${payment.id}/cancel`);

    expect(res.body.status).toBe("canceled");
    expect(await discrepancies(refused)).toBe(before + 1);
  });
});

const REDIRECT = { type: "redirect", redirect_url: "https://hooks.stripe.test/3ds" } as const;

/** A payment waiting for 3-D Secure at a stand-in for Stripe whose cancel (and retrieve) the test decides. */
async function waitingAtStripeDouble(answers: Pick<PaymentProvider, "cancel"> & Partial<PaymentProvider>) {
  withProviders(t, {
    stripe: {
      ...(t.service.providers.get("sandbox") as PaymentProvider),
      name: "stripe",
      authorize: async () => ({
        status: "requires_action",
        providerPaymentId: "pi_3ds",
        nextAction: REDIRECT,
      }),
      ...answers,
    },
  });
  const { order, payment } = await orderWithPayment(t, { currency: "USD" });
  await t.service.db.query("UPDATE payments SET provider = 'stripe' WHERE id = $1", [payment.id]);
  expect((await t.call("POST", `/v1/payments/${payment.id}/confirm`)).body.status).toBe("requires_action");
  return { order, payment };
}

async function recordAtSandbox(paymentId: string, operation: "complete" | "capture", status: string) {
  const { rows } = await t.service.db.query<PaymentRow>("SELECT * FROM payments WHERE id = $1", [paymentId]);
  const row = rows[0] as PaymentRow;
  await recordOperation(
    t.service.db,
    `${paymentId}:${operation}:behind-our-back`,
    toProviderPayment(row),
    operation,
    row.amount,
    status,
  );
}

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
