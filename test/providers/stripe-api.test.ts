import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signPayload } from "../../lib/providers/hmac-signature.ts";
import { startTestService, type TestService } from "../support/harness.ts";
import { type FakeStripe, startFakeStripe } from "./support/fake-stripe.ts";
import { confirm, createPayment } from "./support/flows.ts";

/** Payments through the API to a local Stripe, and Stripe's signed notifications back through our endpoint. */
const WEBHOOK_SECRET = "whsec_api_test";
let stripe: FakeStripe;
let t: TestService;

beforeAll(async () => {
  stripe = await startFakeStripe("sk_test_api");
  t = await startTestService({
    env: {
      STRIPE_SECRET_KEY: "sk_test_api",
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_API_BASE: stripe.url,
      PROVIDER_ROUTES: "*=stripe",
    },
  });
});
afterAll(async () => {
  await t.close();
  await stripe.close();
});

const deliver = (body: string, signature = signPayload(WEBHOOK_SECRET, body)) =>
  t.app.request("/v1/webhooks/stripe", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Stripe-Signature": signature },
    body,
  });

describe("Stripe through the API", () => {
  it.each([
    ["pm_card_visa", { status: "succeeded", amount_captured: 1999 }],
    [
      "pm_card_chargeDeclinedInsufficientFunds",
      { status: "failed", failure: { code: "insufficient_funds" } },
    ],
    ["pm_card_chargeDeclinedExpiredCard", { status: "failed", failure: { code: "expired_card" } }],
  ])("%s → %j", async (method, expected) => {
    const { payment } = await createPayment(t, { payment_method: method });
    expect(payment.provider).toBe("stripe");
    expect((await confirm(t, payment.id)).body).toMatchObject(expected);
  });

  it("settles a 3-D Secure payment from Stripe's signed notification, and refuses a forged one", async () => {
    const { payment } = await createPayment(t, {
      payment_method: "pm_card_authenticationRequired",
      return_url: "https://shop.example/back",
    });
    const pending = await confirm(t, payment.id);
    expect(pending.body).toMatchObject({
      status: "requires_action",
      next_action: { redirect_url: expect.stringContaining("hooks.stripe.com") },
    });
    const intent = stripe.intents.get(pending.body.provider_payment_id);
    if (!intent) throw new Error("no PaymentIntent");
    Object.assign(intent, { status: "succeeded", amount_received: intent.amount, next_action: null });
    const body = JSON.stringify({
      id: "evt_3ds_done",
      object: "event",
      type: "payment_intent.succeeded",
      created: Math.floor(Date.now() / 1000),
      data: { object: intent },
    });

    const forged = await deliver(body, signPayload("whsec_someone_else", body));
    expect(forged.status).toBe(400);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("requires_action");

    expect((await deliver(body)).status).toBe(200);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({
      status: "succeeded",
      amount_captured: 1999,
    });
  });

  it("refunds at Stripe", async () => {
    const { payment } = await createPayment(t);
    const charged = await confirm(t, payment.id);
    const refund = await t.call("POST", "/v1/refunds", { body: { payment_id: payment.id, amount: 999 } });
    expect(refund.body).toMatchObject({ status: "succeeded", amount: 999 });
    const made = [...stripe.refunds.values()].find((r) => r.metadata.refund_id === refund.body.id);
    expect(made).toMatchObject({ amount: 999, payment_intent: charged.body.provider_payment_id });
  });
});
