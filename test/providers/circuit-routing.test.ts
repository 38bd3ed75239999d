import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestService, type TestService } from "../support/harness.ts";
import { type FakeStripe, startFakeStripe } from "./support/fake-stripe.ts";
import { confirm, createPayment } from "./support/flows.ts";
import { unusedPort } from "./support/http-server.ts";

describe("a provider that is down", () => {
  let t: TestService;
  beforeAll(async () => {
    // Stripe refuses connections: every call fails definitely (nothing can have been charged).
    const port = await unusedPort();
    t = await startTestService({
      env: {
        STRIPE_SECRET_KEY: "sk_test_down",
        STRIPE_API_BASE: `http://127.0.0.1:${port}`,
        PROVIDER_ROUTES: "USD=stripe|sandbox",
        PROVIDER_RETRIES: "0",
        PROVIDER_CIRCUIT_THRESHOLD: "2",
        PROVIDER_CIRCUIT_RESET_SECONDS: "30",
      },
    });
  });
  afterAll(() => t.close());

  const ready = async () => {
    const res = await t.app.request("/ready");
    return { status: res.status, body: await res.json() };
  };
  let first: { id: string };

  it("reports every provider's circuit in /ready", async () => {
    const res = await ready();
    expect(res.status).toBe(200);
    expect(res.body.checks).toMatchObject({ provider_stripe: "ok", provider_sandbox: "ok" });
  });

  it("answers 502 while the calls fail, then opens the circuit: /ready degraded, metric 2", async () => {
    first = (await createPayment(t)).payment;
    const second = (await createPayment(t)).payment;
    expect(first).toMatchObject({ provider: "stripe" });
    for (const payment of [first, second]) {
      const res = await confirm(t, payment.id);
      expect(res.status).toBe(502);
      expect(res.body.code).toBe("provider_unavailable");
      expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("requires_confirmation");
    }
    const res = await ready();
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: "degraded",
      checks: { provider_stripe: "down", provider_sandbox: "ok" },
    });
    const metrics = await (await t.app.request("/metrics")).text();
    expect(metrics).toMatch(/^provider_circuit_state\{provider="stripe"\} 2$/m);
  });

  it("fails fast with 503 and Retry-After for a payment already sent to it", async () => {
    const res = await confirm(t, first.id);
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ code: "provider_unavailable", status: 503 });
    const retryAfter = Number(res.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(30);
    expect((await t.call("GET", `/v1/payments/${first.id}`)).body).toMatchObject({
      status: "requires_confirmation",
      provider: "stripe",
    });
  });

  it("sends a payment's first attempt to the next provider of its route", async () => {
    const { order, payment } = await createPayment(t);
    expect(payment.provider).toBe("stripe");
    const res = await confirm(t, payment.id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "succeeded", provider: "sandbox" });
    expect((await t.call("GET", `/v1/orders/${order.id}`)).body.status).toBe("paid");
  });

  it("keeps a payment whose provider the client chose outside the route", async () => {
    const { payment } = await createPayment(t, { currency: "EUR", provider: "stripe" });
    expect((await confirm(t, payment.id)).status).toBe(503);
  });
});

describe("a provider that recovers", () => {
  let stripe: FakeStripe;
  let t: TestService;
  beforeAll(async () => {
    stripe = await startFakeStripe("sk_test_flaky");
    t = await startTestService({
      env: {
        STRIPE_SECRET_KEY: "sk_test_flaky",
        STRIPE_API_BASE: stripe.url,
        PROVIDER_ROUTES: "*=stripe",
        PROVIDER_RETRIES: "2",
        PROVIDER_TIMEOUT_MS: "1500",
      },
    });
  });
  afterAll(async () => {
    await t.close();
    await stripe.close();
  });

  it("retries 5xx answers under the same key and charges once", async () => {
    const { payment } = await createPayment(t);
    stripe.failNext(2, 503);
    const res = await confirm(t, payment.id);
    expect(res.body).toMatchObject({ status: "succeeded", provider: "stripe" });
    const created = stripe.requests.filter((r) => r.path === "/v1/payment_intents");
    expect(created.length).toBeGreaterThanOrEqual(3);
    expect(new Set(created.slice(-3).map((r) => r.headers["idempotency-key"])).size).toBe(1);
    expect([...stripe.intents.values()].filter((i) => i.metadata.payment_id === payment.id)).toHaveLength(1);
  });

  it("retries a lost answer under the same key and gets Stripe's stored result: one charge", async () => {
    const { payment } = await createPayment(t);
    stripe.delayNextAnswer(4_000);
    const res = await confirm(t, payment.id);
    expect(res.body).toMatchObject({ status: "succeeded" });
    expect([...stripe.intents.values()].filter((i) => i.metadata.payment_id === payment.id)).toHaveLength(1);
  });
});
