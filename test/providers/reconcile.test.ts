import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reconcile } from "../../lib/payments/reconcile.ts";
import { startTestService, type TestService } from "../support/harness.ts";
import { type FakeStripe, startFakeStripe } from "./support/fake-stripe.ts";
import { confirm, createPayment, recordsOf } from "./support/flows.ts";

const SUCCEEDED_EVENT = "io.payment-service.payment.succeeded";

describe("reconciliation against the sandbox", () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ env: { RECONCILE_AFTER_SECONDS: "60" } });
  });
  afterAll(() => t.close());

  const ledger = async (paymentId: string) =>
    (
      await t.service.db.query<{ operation: string }>(
        "SELECT operation FROM sandbox_charges WHERE payment_id = $1",
        [paymentId],
      )
    ).rows;

  it("settles a charge whose answer was lost exactly once, however often and concurrently it runs", async () => {
    const { payment } = await createPayment(t, { payment_method: "pm_card_providerTimeout" });
    expect((await confirm(t, payment.id)).body.status).toBe("processing");

    // Younger than RECONCILE_AFTER_SECONDS: left alone.
    const early = await reconcile(t.service);
    expect(early.payments.checked).toBe(0);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("processing");

    const passes = await Promise.all([0, 1, 2].map(() => reconcile(t.service, { olderThanSeconds: 0 })));
    expect(passes.reduce((n, p) => n + p.payments.settled, 0)).toBe(1);
    const again = await reconcile(t.service, { olderThanSeconds: 0 });
    expect(again.payments.checked).toBe(0);

    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({
      status: "succeeded",
      amount_captured: 1999,
    });
    expect(await ledger(payment.id)).toEqual([{ operation: "authorize" }]);
    const { audit, events } = await recordsOf(t, payment.id);
    expect(audit.filter((a) => a.status_after === "succeeded")).toEqual([
      { action: "payment.reconcile.succeeded", status_after: "succeeded" },
    ]);
    expect(events.filter((e) => e === SUCCEEDED_EVENT)).toHaveLength(1);
  });

  it("asks about a payment whose provider call never happened (crash after step 1) and charges it once", async () => {
    const { payment } = await createPayment(t);
    // What confirm's first transaction leaves behind when the process dies before calling the provider.
    await t.service.db.query(
      "UPDATE payments SET status = 'processing', attempt = 1, processing_since = now() - interval '5 minutes' WHERE id = $1",
      [payment.id],
    );
    const result = await reconcile(t.service);
    expect(result.payments).toMatchObject({ checked: 1, settled: 1, errors: 0 });
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("succeeded");
    expect(await ledger(payment.id)).toHaveLength(1);
  });

  it("puts an interrupted capture back to requires_capture when the provider never captured", async () => {
    const { payment } = await createPayment(t, { capture_method: "manual" });
    await confirm(t, payment.id);
    await t.service.db.query(
      "UPDATE payments SET status = 'processing', processing_since = now() - interval '5 minutes' WHERE id = $1",
      [payment.id],
    );
    await reconcile(t.service);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({
      status: "requires_capture",
      amount_capturable: 1999,
    });
  });

  it("settles a refund left pending", async () => {
    const { order, payment } = await createPayment(t);
    await confirm(t, payment.id);
    // A refund reserved in our database whose provider call never completed.
    const refundId = `re_${"7".repeat(32)}`;
    await t.service.db.transaction(async (tx) => {
      await tx.query("UPDATE payments SET amount_refunded = amount_refunded + 500 WHERE id = $1", [
        payment.id,
      ]);
      await tx.query(
        `INSERT INTO refunds (id, merchant_id, payment_id, amount, currency, status, created_at)
         VALUES ($1, 'acct_test', $2, 500, 'USD', 'pending', now() - interval '5 minutes')`,
        [refundId, payment.id],
      );
    });
    const result = await reconcile(t.service);
    expect(result.refunds).toMatchObject({ checked: 1, settled: 1 });
    expect((await t.call("GET", `/v1/refunds/${refundId}`)).body.status).toBe("succeeded");
    expect((await t.call("GET", `/v1/orders/${order.id}`)).body.amount_refunded).toBe(500);
    expect((await reconcile(t.service)).refunds.checked).toBe(0);
  });
});

describe("reconciliation against Stripe", () => {
  let stripe: FakeStripe;
  let t: TestService;
  beforeAll(async () => {
    stripe = await startFakeStripe("sk_test_reconcile");
    t = await startTestService({
      env: {
        STRIPE_SECRET_KEY: "sk_test_reconcile",
        STRIPE_API_BASE: stripe.url,
        PROVIDER_ROUTES: "USD=stripe",
        PROVIDER_TIMEOUT_MS: "1500",
        PROVIDER_RETRIES: "0",
      },
    });
  });
  afterAll(async () => {
    await t.close();
    await stripe.close();
  });

  it("leaves a timed-out charge processing, then finds the one PaymentIntent by replaying the key", async () => {
    const { payment } = await createPayment(t);
    stripe.delayNextAnswer(4_000);
    const res = await confirm(t, payment.id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "processing", provider: "stripe", provider_payment_id: null });

    const result = await reconcile(t.service, { olderThanSeconds: 0 });
    expect(result.payments).toMatchObject({ checked: 1, settled: 1 });
    const intents = [...stripe.intents.values()].filter((i) => i.metadata.payment_id === payment.id);
    expect(intents).toHaveLength(1);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({
      status: "succeeded",
      provider_payment_id: intents[0]?.id,
    });
    const { events } = await recordsOf(t, payment.id);
    expect(events.filter((e) => e === SUCCEEDED_EVENT)).toHaveLength(1);
  });

  it("keeps a payment processing while Stripe cannot be asked", async () => {
    const { payment } = await createPayment(t);
    stripe.delayNextAnswer(4_000);
    await confirm(t, payment.id);
    stripe.failNext(10, 503);
    const result = await reconcile(t.service, { olderThanSeconds: 0 });
    expect(result.payments.errors).toBeGreaterThanOrEqual(1);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("processing");
    stripe.failNext(0);
    await reconcile(t.service, { olderThanSeconds: 0 });
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("succeeded");
  });
});
