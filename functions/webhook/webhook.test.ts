import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signPayload, verifySignature } from "../../lib/providers/hmac-signature.ts";
import {
  type PaymentProvider,
  ProviderError,
  type ProviderNotification,
  type WebhookVerifier,
} from "../../lib/providers/provider.ts";
import { metrics } from "../../lib/telemetry/metrics.ts";
import {
  postSandboxWebhook,
  processingPayment,
  sandboxEventId,
  sandboxHeaders,
  sandboxNotificationBody,
  TEST_ENV,
  withProviders,
} from "../../test/events/support.ts";
import { startTestService, type TestService } from "../../test/support/harness.ts";

let t: TestService;
let secret: string;
beforeAll(async () => {
  t = await startTestService({ env: TEST_ENV });
  secret = t.config.providers.sandbox.webhookSecret;
  withProviders(t, { stripe: testDoubleProvider() });
});
afterAll(() => t.close());

const now = () => Math.floor(Date.now() / 1000);

async function counter(
  metric: { get(): Promise<{ values: { value: number; labels: object }[] }> },
  labels = {},
) {
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
    .reduce((sum, v) => sum + v.value, 0);
}

/** The id of a EUR payment confirmed with the 3-D Secure test card, now waiting for the customer's answer. */
async function awaitingThreeDSecure(amount: number, fields: Record<string, unknown> = {}): Promise<string> {
  const order = await t.call("POST", "/v1/orders", { body: { amount, currency: "EUR" } });
  const created = await t.call("POST", "/v1/payments", {
    body: { order_id: order.body.id, payment_method: "pm_card_threeDSecureRequired", ...fields },
  });
  const confirmed = await t.call("POST", `/v1/payments/${created.body.id}/confirm`);
  expect(confirmed.body.status).toBe("requires_action");
  return created.body.id;
}

/** The sandbox's notification that a payment made by awaitingThreeDSecure reached `type`; what the webhook did. */
async function notifyThreeDSecureOutcome(id: string, type: string, amount: number): Promise<unknown> {
  const body = sandboxNotificationBody({ paymentId: id, type, amount, currency: "EUR" });
  return (await postSandboxWebhook(t, body)).body.result;
}

async function rows<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
  return (await t.service.db.query<T>(sql, params)).rows;
}

const providerEventCount = async () =>
  (await rows<{ n: number }>("SELECT count(*)::int AS n FROM provider_events"))[0]?.n ?? 0;

describe("POST /v1/webhooks/sandbox", () => {
  it("applies a signed notification through the state machine, as the provider, with its event", async () => {
    const { payment, order } = await processingPayment(t, { amount: 2500 });
    const id = sandboxEventId();
    const body = sandboxNotificationBody({
      id,
      paymentId: payment.id,
      type: "payment.succeeded",
      amount: 2500,
    });
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const res = await postSandboxWebhook(t, body, { ...sandboxHeaders(secret, body), traceparent });

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ received: true, event_id: id, result: "applied" });
    const after = await t.call("GET", `/v1/payments/${payment.id}`);
    expect(after.body).toMatchObject({ status: "succeeded", amount_captured: 2500 });
    expect((await t.call("GET", `/v1/orders/${order.id}`)).body.status).toBe("paid");

    const audit = await rows(
      "SELECT actor_type, actor_id, action, status_before, status_after, amount, currency, request_id FROM audit_log WHERE object_id = $1 AND actor_type = 'provider'",
      [payment.id],
    );
    expect(audit).toEqual([
      {
        actor_type: "provider",
        actor_id: "sandbox",
        action: "payment.webhook.succeeded",
        status_before: "processing",
        status_after: "succeeded",
        amount: 2500,
        currency: "USD",
        request_id: res.headers.get("x-request-id"),
      },
    ]);
    const events = await rows(
      "SELECT type, source, partition_key, traceparent FROM outbox WHERE subject IN ($1, $2) AND source = '/payment-service/webhook' ORDER BY seq",
      [payment.id, order.id],
    );
    expect(events).toEqual([
      {
        type: "io.payment-service.payment.succeeded",
        source: "/payment-service/webhook",
        partition_key: payment.id,
        traceparent,
      },
      {
        type: "io.payment-service.order.paid",
        source: "/payment-service/webhook",
        partition_key: payment.id,
        traceparent,
      },
    ]);
    const stored = await rows(
      "SELECT status, reason, payment_id, deliveries FROM provider_events WHERE event_id = $1",
      [id],
    );
    expect(stored).toEqual([{ status: "applied", reason: null, payment_id: payment.id, deliveries: 1 }]);
  });

  it("acknowledges a duplicate delivery with 200 and does not apply it twice", async () => {
    const { payment } = await processingPayment(t);
    const id = sandboxEventId();
    const body = sandboxNotificationBody({ id, paymentId: payment.id, type: "payment.succeeded" });
    const duplicates = await counter(metrics.webhooksDuplicate, { provider: "sandbox" });

    expect((await postSandboxWebhook(t, body)).body.result).toBe("applied");
    const auditBefore = await rows("SELECT id FROM audit_log WHERE object_id = $1", [payment.id]);
    const eventsBefore = await rows("SELECT id FROM outbox WHERE subject = $1", [payment.id]);
    // A provider re-signs each attempt: same event, new signature.
    const again = await postSandboxWebhook(t, body, sandboxHeaders(secret, body, now() - 5));

    expect(again.status).toBe(200);
    expect(again.body).toEqual({ received: true, event_id: id, result: "duplicate" });
    expect(await rows("SELECT id FROM audit_log WHERE object_id = $1", [payment.id])).toEqual(auditBefore);
    expect(await rows("SELECT id FROM outbox WHERE subject = $1", [payment.id])).toEqual(eventsBefore);
    expect((await rows("SELECT deliveries FROM provider_events WHERE event_id = $1", [id]))[0]).toEqual({
      deliveries: 2,
    });
    expect(await counter(metrics.webhooksDuplicate, { provider: "sandbox" })).toBe(duplicates + 1);
  });

  it.each([
    ["a signature made with another secret", (body: string) => sandboxHeaders("whsec_someone_else", body)],
    ["no signature", () => ({ "Content-Type": "application/json" })],
    [
      "a signature of another body",
      () => sandboxHeaders(secret, sandboxNotificationBody({ paymentId: "pay_x", type: "payment.failed" })),
    ],
    [
      "a malformed signature header",
      () => ({ "Content-Type": "application/json", "Sandbox-Signature": "v1=abc" }),
    ],
  ])("rejects %s with 400 problem+json and stores nothing", async (_, headersFor) => {
    const { payment } = await processingPayment(t);
    const body = sandboxNotificationBody({ paymentId: payment.id, type: "payment.succeeded" });
    const before = await providerEventCount();
    const rejected = await counter(metrics.webhooksRejected, { provider: "sandbox", reason: "signature" });

    const res = await postSandboxWebhook(t, body, headersFor(body));

    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body).toMatchObject({
      code: "validation_failed",
      status: 400,
      errors: [{ path: "signature" }],
    });
    expect(res.body.request_id).toBe(res.headers.get("x-request-id"));
    expect(await providerEventCount()).toBe(before);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("processing");
    expect(await counter(metrics.webhooksRejected, { provider: "sandbox", reason: "signature" })).toBe(
      rejected + 1,
    );
  });

  it("rejects a genuine notification replayed after the signature tolerance, storing nothing", async () => {
    const { payment } = await processingPayment(t);
    const body = sandboxNotificationBody({ paymentId: payment.id, type: "payment.succeeded" });
    const before = await providerEventCount();

    const res = await postSandboxWebhook(t, body, sandboxHeaders(secret, body, now() - 301));

    expect(res.status).toBe(400);
    expect(res.body.code).toBe("validation_failed");
    expect(res.body.detail).toContain("tolerance");
    expect(await providerEventCount()).toBe(before);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("processing");
  });

  it("rejects a validly signed body that is not a sandbox event, naming the body", async () => {
    const body = JSON.stringify({ hello: "world" });
    const res = await postSandboxWebhook(t, body);
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ path: "body", message: expect.any(String) }]);
  });

  it("records an older notification that arrives after a newer one, and ignores it", async () => {
    const { payment } = await processingPayment(t, { capture_method: "manual", amount: 1500 });
    const t0 = now();
    const authorized = sandboxNotificationBody({
      paymentId: payment.id,
      type: "payment.requires_capture",
      created: t0,
      amount: 1500,
    });
    const olderId = sandboxEventId();
    const older = sandboxNotificationBody({
      id: olderId,
      paymentId: payment.id,
      type: "payment.succeeded",
      created: t0 - 60,
      amount: 1500,
    });

    expect((await postSandboxWebhook(t, authorized)).body.result).toBe("applied");
    const res = await postSandboxWebhook(t, older);

    expect(res.status).toBe(200);
    expect(res.body.result).toBe("ignored");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("requires_capture");
    expect(await rows("SELECT status, reason FROM provider_events WHERE event_id = $1", [olderId])).toEqual([
      { status: "ignored", reason: "stale" },
    ]);
    // A newer one still applies: the capture the provider reports later.
    const captured = sandboxNotificationBody({
      paymentId: payment.id,
      type: "payment.succeeded",
      created: t0 + 60,
      amount: 1500,
    });
    expect((await postSandboxWebhook(t, captured)).body.result).toBe("applied");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({
      status: "succeeded",
      amount_captured: 1500,
    });
  });

  it("never moves a terminal payment", async () => {
    const { payment } = await processingPayment(t);
    const failed = sandboxNotificationBody({
      paymentId: payment.id,
      type: "payment.failed",
      failure: { code: "card_declined", message: "The card was declined." },
    });
    expect((await postSandboxWebhook(t, failed)).body.result).toBe("applied");
    const succeededId = sandboxEventId();
    const succeeded = sandboxNotificationBody({
      id: succeededId,
      paymentId: payment.id,
      type: "payment.succeeded",
      created: now() + 120,
    });

    const res = await postSandboxWebhook(t, succeeded);

    expect(res.status).toBe(200);
    expect(res.body.result).toBe("ignored");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({
      status: "failed",
      failure: { code: "card_declined" },
      amount_captured: 0,
    });
    expect(await rows("SELECT reason FROM provider_events WHERE event_id = $1", [succeededId])).toEqual([
      { reason: "not_applicable" },
    ]);
  });

  it("counts and logs a charge reported for a payment canceled here: money to give back", async () => {
    const id = await awaitingThreeDSecure(900);
    expect((await t.call("POST", `/v1/payments/${id}/cancel`)).body.status).toBe("canceled");
    const discrepancies = { provider: "sandbox", kind: "charged_after_cancel" };
    const before = await counter(metrics.providerDiscrepancies, discrepancies);

    expect(await notifyThreeDSecureOutcome(id, "payment.succeeded", 900)).toBe("ignored");

    expect((await t.call("GET", `/v1/payments/${id}`)).body.status).toBe("canceled");
    expect(await counter(metrics.providerDiscrepancies, discrepancies)).toBe(before + 1);
    // A failure reported for it is no news: nothing to give back.
    const failed = sandboxNotificationBody({
      paymentId: id,
      type: "payment.failed",
      failure: { code: "authentication_failed", message: "3-D Secure failed." },
      created: now() + 60,
    });
    expect((await postSandboxWebhook(t, failed)).body.result).toBe("ignored");
    expect(await counter(metrics.providerDiscrepancies, discrepancies)).toBe(before + 1);
  });

  it("settles a payment waiting for 3-D Secure", async () => {
    const id = await awaitingThreeDSecure(700);
    expect(await notifyThreeDSecureOutcome(id, "payment.succeeded", 700)).toBe("applied");
    expect((await t.call("GET", `/v1/payments/${id}`)).body.status).toBe("succeeded");
  });

  it("authorizes a manual-capture payment waiting for 3-D Secure (through processing, as the state machine says)", async () => {
    const id = await awaitingThreeDSecure(800, { capture_method: "manual" });
    expect(await notifyThreeDSecureOutcome(id, "payment.requires_capture", 800)).toBe("applied");
    expect((await t.call("GET", `/v1/payments/${id}`)).body).toMatchObject({
      status: "requires_capture",
      amount_capturable: 800,
    });
    const trail = await rows<{ status_after: string }>(
      "SELECT status_after FROM audit_log WHERE object_id = $1 ORDER BY id",
      [id],
    );
    expect(trail.map((r) => r.status_after).slice(-2)).toEqual(["processing", "requires_capture"]);
  });

  it("answers 404 for a provider it does not know or that is not configured", async () => {
    for (const path of ["/v1/webhooks/paypal", "/v1/webhooks/yookassa"]) {
      const res = await t.app.request(path, { method: "POST", body: "{}" });
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect((await res.json()).code).toBe("not_found");
    }
  });

  it("answers 413 for a body over 64 KiB", async () => {
    const body = JSON.stringify({ padding: "x".repeat(70 * 1024) });
    const res = await postSandboxWebhook(t, body);
    expect(res.status).toBe(413);
    expect(res.body.code).toBe("payload_too_large");
  });

  it("needs no JWT (providers have none) and ignores one that is present", async () => {
    const { payment } = await processingPayment(t);
    const body = sandboxNotificationBody({ paymentId: payment.id, type: "payment.succeeded" });
    const res = await postSandboxWebhook(t, body, {
      ...sandboxHeaders(secret, body),
      Authorization: "Bearer junk",
    });
    expect(res.status).toBe(200);
  });

  it("acknowledges an event type it does not act on, explicitly ignored and counted", async () => {
    const ignoredBefore = await counter(metrics.webhooksIgnored, { provider: "stripe" });
    const res = await postDouble({ id: "evt_customer_1", type: "customer.created" });

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ received: true, event_id: "evt_customer_1", result: "ignored" });
    expect(
      await rows("SELECT status, reason FROM provider_events WHERE event_id = 'evt_customer_1'"),
    ).toEqual([{ status: "ignored", reason: "unhandled_type" }]);
    expect(await counter(metrics.webhooksIgnored, { provider: "stripe" })).toBe(ignoredBefore + 1);
  });

  it("ignores a notification that names another provider's payment", async () => {
    const { payment } = await processingPayment(t);
    const res = await postDouble({
      id: "evt_cross_1",
      type: "payment_intent.succeeded",
      payment_id: payment.id,
    });
    expect(res.body.result).toBe("ignored");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("processing");
  });

  it("answers 503 and stores nothing when the provider's own check cannot run now", async () => {
    const before = await providerEventCount();
    const res = await postDouble({ id: "evt_unverifiable_1", type: "unverifiable" });
    expect(res.status).toBe(503);
    expect(res.body.code).toBe("provider_unavailable");
    expect(res.headers.get("retry-after")).toBeTruthy();
    expect(await providerEventCount()).toBe(before);
  });
});

describe("refund notifications", () => {
  /** A captured stripe payment with a refund the provider answered "pending" for. */
  async function pendingRefund(amount: number) {
    const suffix = sandboxEventId().slice(8);
    const ids = { order: `ord_${suffix}`, payment: `pay_${suffix}`, refund: `re_${suffix}` };
    await t.service.db.transaction(async (tx) => {
      await tx.query(
        "INSERT INTO orders (id, merchant_id, amount, currency, status, amount_paid) VALUES ($1, 'acct_test', 5000, 'USD', 'paid', 5000)",
        [ids.order],
      );
      await tx.query(
        `INSERT INTO payments (id, merchant_id, order_id, amount, currency, status, provider, provider_payment_id,
                               payment_method, amount_captured, amount_refunded)
         VALUES ($1, 'acct_test', $2, 5000, 'USD', 'succeeded', 'stripe', 'pi_refunded', 'pm_card_visa', 5000, $3)`,
        [ids.payment, ids.order, amount],
      );
      await tx.query(
        "INSERT INTO refunds (id, merchant_id, payment_id, amount, currency, status) VALUES ($1, 'acct_test', $2, $3, 'USD', 'pending')",
        [ids.refund, ids.payment, amount],
      );
    });
    return ids;
  }

  it("settles a pending refund the provider reports succeeded, audited as the provider", async () => {
    const ids = await pendingRefund(1200);
    const res = await postDouble({
      id: `evt_${ids.refund}`,
      type: "refund.updated",
      refund_id: ids.refund,
      refund_status: "succeeded",
    });

    expect(res.body.result).toBe("applied");
    expect((await t.call("GET", `/v1/refunds/${ids.refund}`)).body.status).toBe("succeeded");
    expect((await t.call("GET", `/v1/orders/${ids.order}`)).body.amount_refunded).toBe(1200);
    expect(
      await rows("SELECT actor_type, action, amount FROM audit_log WHERE object_id = $1", [ids.refund]),
    ).toEqual([{ actor_type: "provider", action: "refund.succeeded", amount: 1200 }]);
    expect(
      await rows("SELECT status, refund_id FROM provider_events WHERE event_id = $1", [`evt_${ids.refund}`]),
    ).toEqual([{ status: "applied", refund_id: ids.refund }]);
    // Told again (another event id), the refund is already settled.
    const again = await postDouble({
      id: `evt2_${ids.refund}`,
      type: "refund.updated",
      refund_id: ids.refund,
      refund_status: "failed",
    });
    expect(again.body.result).toBe("ignored");
    expect((await t.call("GET", `/v1/refunds/${ids.refund}`)).body.status).toBe("succeeded");
  });

  it("releases the amount of a refund the provider reports failed", async () => {
    const ids = await pendingRefund(800);
    const res = await postDouble({
      id: `evt_${ids.refund}`,
      type: "refund.failed",
      refund_id: ids.refund,
      refund_status: "failed",
    });
    expect(res.body.result).toBe("applied");
    expect((await t.call("GET", `/v1/payments/${ids.payment}`)).body.amount_refunded).toBe(0);
  });

  it("keeps a notification of a refund not known yet (503)", async () => {
    const res = await postDouble({
      id: "evt_refund_early",
      type: "refund.updated",
      refund_id: `re_${"c".repeat(32)}`,
      refund_status: "succeeded",
    });
    expect(res.status).toBe(503);
  });
});

describe("a notification that arrives before its payment", () => {
  it("is stored and answered 503, then applied on the provider's retry", async () => {
    const { payment } = await processingPayment(t);
    const early = `pay_${"0".repeat(8)}${payment.id.slice(12)}`; // an id not created yet
    const id = sandboxEventId();
    const body = sandboxNotificationBody({ id, paymentId: early, type: "payment.succeeded" });
    const failed = await counter(metrics.webhooksFailed, { provider: "sandbox" });

    const first = await postSandboxWebhook(t, body);

    expect(first.status).toBe(503);
    expect(first.headers.get("content-type")).toContain("application/problem+json");
    expect(first.headers.get("retry-after")).toBe("10");
    expect(await rows("SELECT status FROM provider_events WHERE event_id = $1", [id])).toEqual([
      { status: "pending" },
    ]);
    expect(await counter(metrics.webhooksFailed, { provider: "sandbox" })).toBe(failed + 1);

    // The payment's create (and confirm) commit afterwards: here the row appears under that id.
    await copyPaymentAs(payment.id, early);
    const retry = await postSandboxWebhook(t, body);

    expect(retry.status).toBe(200);
    expect(retry.body.result).toBe("applied");
    expect(await rows("SELECT status, deliveries FROM provider_events WHERE event_id = $1", [id])).toEqual([
      { status: "applied", deliveries: 2 },
    ]);
    expect(
      (await rows<{ status: string }>("SELECT status FROM payments WHERE id = $1", [early]))[0]?.status,
    ).toBe("succeeded");
  });

  it("is applied by the drain pass's sweep when no retry comes", async () => {
    const { payment } = await processingPayment(t);
    const early = `pay_${"1".repeat(8)}${payment.id.slice(12)}`;
    const id = sandboxEventId();
    const body = sandboxNotificationBody({ id, paymentId: early, type: "payment.succeeded" });
    expect((await postSandboxWebhook(t, body)).status).toBe(503);
    await copyPaymentAs(payment.id, early);

    const drain = await t.app.request("/internal/outbox/drain", { method: "POST" });

    expect(drain.status).toBe(200);
    expect((await drain.json()).notifications.applied).toBeGreaterThanOrEqual(1);
    expect(await rows("SELECT status FROM provider_events WHERE event_id = $1", [id])).toEqual([
      { status: "applied" },
    ]);
    const audit = await rows("SELECT actor_type, action FROM audit_log WHERE object_id = $1", [early]);
    expect(audit).toContainEqual({ actor_type: "provider", action: "payment.webhook.succeeded" });
  });

  it("waits while the payment exists but has not been confirmed yet", async () => {
    const order = await t.call("POST", "/v1/orders", { body: { amount: 1999, currency: "USD" } });
    const created = await t.call("POST", "/v1/payments", {
      body: { order_id: order.body.id, payment_method: "pm_card_providerTimeout" },
    });
    const id = sandboxEventId();
    const body = sandboxNotificationBody({ id, paymentId: created.body.id, type: "payment.succeeded" });

    expect((await postSandboxWebhook(t, body)).status).toBe(503);
    await t.call("POST", `/v1/payments/${created.body.id}/confirm`);
    expect((await postSandboxWebhook(t, body)).body.result).toBe("applied");
    expect((await t.call("GET", `/v1/payments/${created.body.id}`)).body.status).toBe("succeeded");
  });
});

/** Inserts a copy of an order and its processing payment under a new payment id (as if created just now). */
async function copyPaymentAs(paymentId: string, newId: string): Promise<void> {
  const newOrder = `ord_${newId.slice(4)}`;
  await t.service.db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO orders (id, merchant_id, amount, currency)
       SELECT $2, o.merchant_id, o.amount, o.currency FROM orders o JOIN payments p ON p.order_id = o.id WHERE p.id = $1`,
      [paymentId, newOrder],
    );
    await tx.query(
      `INSERT INTO payments (id, merchant_id, order_id, amount, currency, status, provider, provider_payment_id,
                             payment_method, processing_since)
       SELECT $2, merchant_id, $3, amount, currency, 'processing', provider, 'sbx_' || substr($2, 5), payment_method, now()
       FROM payments WHERE id = $1`,
      [paymentId, newId, newOrder],
    );
  });
}

const STRIPE_TEST_SECRET = "whsec_test_double";

/** Posts a notification to the test double in the stripe slot, signed. */
async function postDouble(event: Record<string, unknown>) {
  const body = JSON.stringify({ created: now(), ...event });
  const res = await t.app.request("/v1/webhooks/stripe", {
    method: "POST",
    headers: { "Stripe-Signature": signPayload(STRIPE_TEST_SECRET, body) },
    body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/**
 * A stand-in verifier in the stripe slot, for what the sandbox's format cannot express: event types the service
 * does not act on, refunds, a payment of another provider, and a check that cannot run right now.
 */
function testDoubleProvider(): PaymentProvider & WebhookVerifier {
  const unused = async (): Promise<never> => {
    throw new Error("not used in these tests");
  };
  return {
    name: "stripe",
    authorize: unused,
    capture: unused,
    cancel: unused,
    refund: unused,
    retrieve: unused,
    async parseWebhook(request): Promise<ProviderNotification> {
      verifySignature(STRIPE_TEST_SECRET, request.rawBody, request.headers.get("stripe-signature"));
      const event = JSON.parse(request.rawBody) as {
        id: string;
        type: string;
        created: number;
        payment_id?: string;
        refund_id?: string;
        refund_status?: "succeeded" | "failed";
      };
      if (event.type === "unverifiable")
        throw new ProviderError("stripe", "could not ask the provider", false);
      return {
        eventId: event.id,
        type: event.type,
        paymentId: event.payment_id,
        outcome:
          event.payment_id && !event.refund_id
            ? { status: "succeeded", providerPaymentId: "pi_1", amountCaptured: 1999 }
            : undefined,
        refund: event.refund_status ? { refundId: event.refund_id, status: event.refund_status } : undefined,
        occurredAt: new Date(event.created * 1000),
      };
    },
  };
}
