import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeStripe, parseForm, startFakeStripe } from "../../test/providers/support/fake-stripe.ts";
import { unusedPort } from "../../test/providers/support/http-server.ts";
import { newId } from "../payments/ids.ts";
import { signPayload } from "./hmac-signature.ts";
import {
  type PaymentProvider,
  ProviderError,
  type ProviderPayment,
  ProviderRequestRejected,
  WebhookRejected,
} from "./provider.ts";
import { stripeProvider } from "./stripe.ts";

const WEBHOOK_SECRET = "whsec_test_secret";
let fake: FakeStripe;
let stripe: PaymentProvider;

beforeAll(async () => {
  fake = await startFakeStripe("sk_test_fake");
  stripe = stripeProvider({
    secretKey: "sk_test_fake",
    webhookSecret: WEBHOOK_SECRET,
    apiBase: fake.url,
    timeoutMs: 5_000,
  });
});
afterAll(() => fake.close());

const payment = (overrides: Partial<ProviderPayment> = {}): ProviderPayment => ({
  paymentId: newId("pay"),
  merchantId: "acct_1",
  amount: 1999,
  currency: "USD",
  paymentMethod: "pm_card_visa",
  captureMethod: "automatic",
  ...overrides,
});
const keyOf = (p: ProviderPayment, op = "authorize") => `${p.paymentId}:${op}:1`;
const lastExecuted = () => fake.executed().at(-1);

describe("stripe authorize", () => {
  it("creates and confirms a PaymentIntent in one call, with the idempotency key and our id", async () => {
    const p = payment({ description: "Coffee" });
    const outcome = await stripe.authorize(p, keyOf(p));
    expect(outcome).toMatchObject({ status: "succeeded", amountCaptured: 1999 });
    const sent = lastExecuted();
    expect(sent?.path).toBe("/v1/payment_intents");
    expect(sent?.headers["idempotency-key"]).toBe(keyOf(p));
    expect(parseForm(sent?.body ?? "")).toMatchObject({
      amount: "1999",
      currency: "usd",
      payment_method: "pm_card_visa",
      confirm: "true",
      capture_method: "automatic",
      description: "Coffee",
      metadata: { payment_id: p.paymentId, merchant_id: "acct_1" },
    });
    expect(fake.intents.get(outcome.providerPaymentId ?? "")?.metadata.payment_id).toBe(p.paymentId);
  });

  it("authorizes only with capture_method manual", async () => {
    const p = payment({ captureMethod: "manual" });
    expect(await stripe.authorize(p, keyOf(p))).toMatchObject({
      status: "requires_capture",
      amountCapturable: 1999,
    });
  });

  it.each([
    ["pm_card_chargeDeclined", "card_declined"],
    ["pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"],
    ["pm_card_chargeDeclinedExpiredCard", "expired_card"],
  ])("maps the decline of %s to %s", async (method, code) => {
    const p = payment({ paymentMethod: method });
    const outcome = await stripe.authorize(p, keyOf(p));
    expect(outcome.status).toBe("failed");
    expect(outcome.status === "failed" && outcome.failure.code).toBe(code);
    expect(outcome.providerPaymentId).toMatch(/^pi_/);
  });

  it("turns a redirect to 3-D Secure into next_action, and refuses it without a return_url", async () => {
    const p = payment({
      paymentMethod: "pm_card_authenticationRequired",
      returnUrl: "https://shop.example/back",
    });
    const outcome = await stripe.authorize(p, keyOf(p));
    expect(outcome).toMatchObject({
      status: "requires_action",
      nextAction: {
        type: "redirect",
        redirect_url: expect.stringMatching(/^https:\/\/hooks\.stripe\.com\/3ds\//),
      },
    });
    expect(parseForm(lastExecuted()?.body ?? "").return_url).toBe("https://shop.example/back");

    const bare = payment({ paymentMethod: "pm_card_authenticationRequired" });
    const refused = await stripe.authorize(bare, keyOf(bare));
    expect(refused.status === "failed" && refused.failure.code).toBe("authentication_failed");
    expect(parseForm(lastExecuted()?.body ?? "").automatic_payment_methods).toEqual({
      enabled: "true",
      allow_redirects: "never",
    });
  });

  it("replays a repeated key instead of charging twice", async () => {
    const p = payment();
    const before = fake.intents.size;
    const first = await stripe.authorize(p, keyOf(p));
    const second = await stripe.authorize(p, keyOf(p));
    expect(second.providerPaymentId).toBe(first.providerPaymentId);
    expect(fake.intents.size).toBe(before + 1);
  });

  it("sends three-decimal currencies as Stripe wants them and refuses what it would reject", async () => {
    const kwd = payment({ currency: "KWD", amount: 12_340 });
    await stripe.authorize(kwd, keyOf(kwd));
    expect(parseForm(lastExecuted()?.body ?? "")).toMatchObject({ amount: "12340", currency: "kwd" });
    const odd = payment({ currency: "KWD", amount: 12_345 });
    await expect(stripe.authorize(odd, keyOf(odd))).rejects.toBeInstanceOf(ProviderRequestRejected);
    const jpy = payment({ currency: "JPY", amount: 500 });
    await stripe.authorize(jpy, keyOf(jpy));
    expect(parseForm(lastExecuted()?.body ?? "")).toMatchObject({ amount: "500", currency: "jpy" });
  });
});

describe("stripe failures", () => {
  it("reports a 5xx as an unknown outcome", async () => {
    fake.failNext(1, 500);
    const p = payment();
    const error = await stripe.authorize(p, keyOf(p)).catch((e) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.definite).toBe(false);
  });

  it("reports 429 as definite (nothing happened) and a bad key as a rejection", async () => {
    fake.failNext(1, 429);
    const p = payment();
    const limited = await stripe.authorize(p, keyOf(p)).catch((e) => e);
    expect(limited).toBeInstanceOf(ProviderError);
    expect(limited).not.toBeInstanceOf(ProviderRequestRejected);
    expect(limited.definite).toBe(true);

    const wrongKey = stripeProvider({ secretKey: "sk_test_wrong", apiBase: fake.url, timeoutMs: 5_000 });
    const rejected = await wrongKey.authorize(p, keyOf(p)).catch((e) => e);
    expect(rejected).toBeInstanceOf(ProviderRequestRejected);
    expect(rejected.definite).toBe(true);
  });

  it("reports a refused connection as definite", async () => {
    const port = await unusedPort();
    const nowhere = stripeProvider({
      secretKey: "sk_test_fake",
      apiBase: `http://127.0.0.1:${port}`,
      timeoutMs: 5_000,
    });
    const p = payment();
    const error = await nowhere.authorize(p, keyOf(p)).catch((e) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.definite).toBe(true);
  });

  it("treats a lost answer as unknown, and retrieve finds the one charge that was made", async () => {
    const p = payment();
    // A client that gives up long before the answer comes; the same Stripe account asks afterwards.
    const hasty = stripeProvider({ secretKey: "sk_test_fake", apiBase: fake.url, timeoutMs: 300 });
    fake.delayNextAnswer(3_000);
    const error = await hasty.authorize(p, keyOf(p)).catch((e) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.definite).toBe(false);
    const charged = [...fake.intents.values()].filter((i) => i.metadata.payment_id === p.paymentId);
    expect(charged).toHaveLength(1);

    const outcome = await stripe.retrieve(p, keyOf(p));
    expect(outcome).toMatchObject({
      status: "succeeded",
      providerPaymentId: charged[0]?.id,
      amountCaptured: 1999,
    });
    expect([...fake.intents.values()].filter((i) => i.metadata.payment_id === p.paymentId)).toHaveLength(1);
    expect(lastExecuted()?.path).toBe(`/v1/payment_intents/${charged[0]?.id}`);
  });
});

describe("stripe capture, cancel, refund", () => {
  it("captures part of an authorization and never more than authorized", async () => {
    const p = payment({ captureMethod: "manual" });
    const authorized = await stripe.authorize(p, keyOf(p));
    const held = { ...p, providerPaymentId: authorized.providerPaymentId };
    await expect(stripe.capture(held, 2000, keyOf(p, "capture"))).rejects.toBeInstanceOf(
      ProviderRequestRejected,
    );
    const captured = await stripe.capture(held, 1500, `${keyOf(p, "capture")}b`);
    expect(captured).toMatchObject({ status: "succeeded", amountCaptured: 1500 });
    expect(parseForm(lastExecuted()?.body ?? "")).toEqual({ amount_to_capture: "1500" });
    expect(lastExecuted()?.headers["idempotency-key"]).toBe(`${keyOf(p, "capture")}b`);
  });

  it("cancels an authorization, and has nothing to cancel before one exists", async () => {
    const p = payment({ captureMethod: "manual" });
    const authorized = await stripe.authorize(p, keyOf(p));
    const canceled = await stripe.cancel(
      { ...p, providerPaymentId: authorized.providerPaymentId },
      keyOf(p, "cancel"),
    );
    expect(canceled.status).toBe("canceled");
    expect(fake.intents.get(authorized.providerPaymentId ?? "")?.status).toBe("canceled");
    const count = fake.executed().length;
    expect((await stripe.cancel(payment(), "k")).status).toBe("canceled");
    expect(fake.executed()).toHaveLength(count);
  });

  it("refunds partly, fails a refund above what is left, and follows a pending refund", async () => {
    const p = payment();
    const charged = { ...p, providerPaymentId: (await stripe.authorize(p, keyOf(p))).providerPaymentId };
    expect(await stripe.refund(charged, { refundId: "re_1", amount: 999 }, "re_1:refund:1")).toBe(
      "succeeded",
    );
    expect(parseForm(lastExecuted()?.body ?? "")).toMatchObject({
      amount: "999",
      metadata: { refund_id: "re_1" },
    });
    expect(await stripe.refund(charged, { refundId: "re_2", amount: 1001 }, "re_2:refund:1")).toBe("failed");

    fake.refundStatus = "pending";
    try {
      expect(await stripe.refund(charged, { refundId: "re_3", amount: 500 }, "re_3:refund:1")).toBe(
        "pending",
      );
      const created = [...fake.refunds.values()].find((r) => r.metadata.refund_id === "re_3");
      if (created) created.status = "succeeded";
      expect(await stripe.retrieveRefund?.(charged, { refundId: "re_3", amount: 500 }, "re_3:refund:1")).toBe(
        "succeeded",
      );
    } finally {
      fake.refundStatus = "succeeded";
    }
  });
});

describe("stripe webhooks", () => {
  const event = (type: string, object: Record<string, unknown>, created = Math.floor(Date.now() / 1000)) =>
    JSON.stringify({
      id: `evt_${type.replaceAll(".", "_")}`,
      object: "event",
      type,
      created,
      data: { object },
    });
  const request = (body: string, signature = signPayload(WEBHOOK_SECRET, body)) => ({
    rawBody: body,
    headers: new Headers({ "Stripe-Signature": signature }),
    clientIp: "203.0.113.9",
  });
  const intent = (fields: Record<string, unknown>) => ({
    id: "pi_123",
    object: "payment_intent",
    amount: 1999,
    amount_received: 0,
    amount_capturable: 0,
    metadata: { payment_id: "pay_0123456789abcdef0123456789abcdef" },
    ...fields,
  });
  const parse = (body: string, signature?: string) => {
    const parseWebhook = stripe.parseWebhook;
    if (!parseWebhook) throw new Error("stripe has no parseWebhook");
    return parseWebhook(request(body, signature));
  };

  it("reads payment_intent events in our terms", async () => {
    const succeeded = await parse(
      event("payment_intent.succeeded", intent({ status: "succeeded", amount_received: 1999 })),
    );
    expect(succeeded).toMatchObject({
      eventId: "evt_payment_intent_succeeded",
      type: "payment_intent.succeeded",
      paymentId: "pay_0123456789abcdef0123456789abcdef",
      providerPaymentId: "pi_123",
      outcome: { status: "succeeded", amountCaptured: 1999 },
    });
    const failed = await parse(
      event(
        "payment_intent.payment_failed",
        intent({
          status: "requires_payment_method",
          last_payment_error: { code: "card_declined", decline_code: "insufficient_funds" },
        }),
      ),
    );
    expect(failed.outcome).toMatchObject({ status: "failed", failure: { code: "insufficient_funds" } });
    const capturable = await parse(
      event(
        "payment_intent.amount_capturable_updated",
        intent({ status: "requires_capture", amount_capturable: 1999 }),
      ),
    );
    expect(capturable.outcome).toMatchObject({ status: "requires_capture", amountCapturable: 1999 });
    const canceled = await parse(event("payment_intent.canceled", intent({ status: "canceled" })));
    expect(canceled.outcome).toMatchObject({ status: "canceled" });
  });

  it("reads refunds, and leaves types it does not act on without an outcome", async () => {
    const refunded = await parse(
      event("charge.refunded", {
        id: "ch_1",
        object: "charge",
        payment_intent: "pi_123",
        metadata: {},
        refunds: {
          data: [
            { id: "re_s1", status: "succeeded", metadata: { refund_id: "re_ours", payment_id: "pay_x" } },
          ],
        },
      }),
    );
    expect(refunded).toMatchObject({
      providerPaymentId: "pi_123",
      refund: { refundId: "re_ours", providerRefundId: "re_s1", status: "succeeded" },
    });
    const failedRefund = await parse(
      event("refund.failed", {
        id: "re_s2",
        object: "refund",
        status: "failed",
        payment_intent: "pi_123",
        metadata: {},
      }),
    );
    expect(failedRefund.refund).toMatchObject({ providerRefundId: "re_s2", status: "failed" });
    const other = await parse(event("customer.created", { id: "cus_1" }));
    expect(other.outcome).toBeUndefined();
    expect(other.refund).toBeUndefined();
  });

  it("accepts any of several v1 signatures (secret rotation)", async () => {
    const body = event("payment_intent.processing", intent({ status: "processing" }));
    const t = Math.floor(Date.now() / 1000);
    const good = signPayload(WEBHOOK_SECRET, body, t).split("v1=")[1];
    const header = `t=${t},v1=${"0".repeat(64)},v1=${good}`;
    expect((await parse(body, header)).outcome).toMatchObject({ status: "processing" });
  });

  it("rejects a wrong signature, a missing one, a stale one and a body that is not an event", async () => {
    const body = event("payment_intent.succeeded", intent({ status: "succeeded" }));
    await expect(parse(body, signPayload("whsec_other", body))).rejects.toMatchObject({
      reason: "signature",
    });
    await expect(parse(body, "")).rejects.toBeInstanceOf(WebhookRejected);
    await expect(parse(`${body} `, signPayload(WEBHOOK_SECRET, body))).rejects.toMatchObject({
      reason: "signature",
    });
    const old = Math.floor(Date.now() / 1000) - 301;
    await expect(parse(body, signPayload(WEBHOOK_SECRET, body, old))).rejects.toMatchObject({
      reason: "stale",
    });
    const junk = JSON.stringify({ hello: "world" });
    await expect(parse(junk, signPayload(WEBHOOK_SECRET, junk))).rejects.toMatchObject({
      reason: "malformed",
    });
  });

  it("accepts no notifications at all without a signing secret", () => {
    const unsigned = stripeProvider({ secretKey: "sk_test_fake", apiBase: fake.url, timeoutMs: 5_000 });
    expect(unsigned.parseWebhook).toBeUndefined();
  });
});
