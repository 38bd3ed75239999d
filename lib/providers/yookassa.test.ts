import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeYooKassa, startFakeYooKassa } from "../../test/providers/support/fake-yookassa.ts";
import { unusedPort } from "../../test/providers/support/http-server.ts";
import { ipAllowList } from "../http/ip-allowlist.ts";
import { newId } from "../payments/ids.ts";
import {
  type PaymentProvider,
  ProviderError,
  type ProviderPayment,
  ProviderRequestRejected,
  WebhookRejected,
} from "./provider.ts";
import { YOOKASSA_NOTIFICATION_IPS, yookassaProvider } from "./yookassa.ts";

let fake: FakeYooKassa;
let yookassa: PaymentProvider;
/** The same shop with a client that gives up long before a delayed answer arrives. */
let hasty: PaymentProvider;

beforeAll(async () => {
  fake = await startFakeYooKassa("100500", "test_secret");
  yookassa = yookassaProvider({
    shopId: "100500",
    secretKey: "test_secret",
    apiBase: fake.apiBase,
    timeoutMs: 5_000,
  });
  hasty = yookassaProvider({
    shopId: "100500",
    secretKey: "test_secret",
    apiBase: fake.apiBase,
    timeoutMs: 300,
  });
});
afterAll(() => fake.close());

const payment = (overrides: Partial<ProviderPayment> = {}): ProviderPayment => ({
  paymentId: newId("pay"),
  merchantId: "acct_1",
  amount: 10_050,
  currency: "RUB",
  paymentMethod: "pm_card_visa",
  captureMethod: "automatic",
  ...overrides,
});
const keyOf = (p: ProviderPayment, op = "authorize") => `${p.paymentId}:${op}:1`;
const lastExecuted = () => fake.executed().at(-1);
const sentBody = () => JSON.parse(lastExecuted()?.body ?? "{}");

describe("yookassa payments", () => {
  it("creates a payment with Basic auth, Idempotence-Key and an exact decimal amount", async () => {
    const p = payment({ description: "Order 42" });
    const outcome = await yookassa.authorize(p, keyOf(p));
    expect(outcome).toMatchObject({ status: "succeeded", amountCaptured: 10_050 });
    const sent = lastExecuted();
    expect(sent?.path).toBe("/v3/payments");
    expect(sent?.headers["idempotence-key"]).toBe(keyOf(p));
    expect(keyOf(p).length).toBeLessThanOrEqual(64);
    expect(sentBody()).toMatchObject({
      amount: { value: "100.50", currency: "RUB" },
      capture: true,
      payment_method_data: { type: "bank_card" },
      description: "Order 42",
      metadata: { payment_id: p.paymentId, merchant_id: "acct_1" },
    });
  });

  it("passes a saved payment method and a 54-FZ receipt through", async () => {
    const p = payment({
      paymentMethod: "pm_2b5c7f6e000f50008000aa1122334455",
      receipt: {
        customer: { email: "buyer@example.com" },
        items: [{ description: "Tea", quantity: "1.00" }],
      },
    });
    await yookassa.authorize(p, keyOf(p));
    expect(sentBody()).toMatchObject({
      payment_method_id: "2b5c7f6e-000f-5000-8000-aa1122334455",
      receipt: { items: [{ description: "Tea" }] },
    });
  });

  it("holds the money with capture false and captures part of it", async () => {
    const p = payment({ captureMethod: "manual" });
    const held = await yookassa.authorize(p, keyOf(p));
    expect(held).toMatchObject({ status: "requires_capture", amountCapturable: 10_050 });
    expect(sentBody().capture).toBe(false);
    const withId = { ...p, providerPaymentId: held.providerPaymentId };
    await expect(yookassa.capture(withId, 10_051, keyOf(p, "capture"))).rejects.toBeInstanceOf(
      ProviderRequestRejected,
    );
    const captured = await yookassa.capture(withId, 5_000, `${keyOf(p, "capture")}b`);
    expect(captured).toMatchObject({ status: "succeeded", amountCaptured: 5_000 });
    expect(sentBody()).toEqual({ amount: { value: "50.00", currency: "RUB" } });
  });

  it("sends the customer to the confirmation page when there is a return_url", async () => {
    const p = payment({ returnUrl: "https://shop.example/back" });
    const outcome = await yookassa.authorize(p, keyOf(p));
    expect(sentBody().confirmation).toEqual({ type: "redirect", return_url: "https://shop.example/back" });
    expect(outcome).toMatchObject({
      status: "requires_action",
      nextAction: { type: "redirect", redirect_url: expect.stringContaining("yoomoney.ru/checkout") },
    });
  });

  it.each([
    ["insufficient_funds", "insufficient_funds"],
    ["card_expired", "expired_card"],
    ["3d_secure_failed", "authentication_failed"],
    ["general_decline", "card_declined"],
    ["fraud_suspected", "card_declined"],
  ])("maps cancellation reason %s to %s", async (reason, code) => {
    fake.declineNext(reason);
    const p = payment();
    const outcome = await yookassa.authorize(p, keyOf(p));
    expect(outcome.status === "failed" && outcome.failure.code).toBe(code);
  });

  it("voids an authorization and refunds partly, refusing more than was paid", async () => {
    const held = payment({ captureMethod: "manual" });
    const authorized = await yookassa.authorize(held, keyOf(held));
    const voided = await yookassa.cancel(
      { ...held, providerPaymentId: authorized.providerPaymentId },
      keyOf(held, "cancel"),
    );
    expect(voided.status).toBe("canceled");

    const p = payment();
    const charged = { ...p, providerPaymentId: (await yookassa.authorize(p, keyOf(p))).providerPaymentId };
    expect(await yookassa.refund(charged, { refundId: "re_a", amount: 5_025 }, "re_a:refund:1")).toBe(
      "succeeded",
    );
    expect(sentBody()).toMatchObject({
      payment_id: charged.providerPaymentId,
      amount: { value: "50.25", currency: "RUB" },
      metadata: { refund_id: "re_a" },
    });
    expect(await yookassa.refund(charged, { refundId: "re_b", amount: 5_026 }, "re_b:refund:1")).toBe(
      "failed",
    );
  });
});

describe("yookassa failures", () => {
  it("treats 500 as unknown, 429 as definite, 401 as a rejection", async () => {
    const p = payment();
    fake.failNext(1, 500);
    expect(await yookassa.authorize(p, keyOf(p)).catch((e) => e)).toMatchObject({ definite: false });
    fake.failNext(1, 429);
    const limited = await yookassa.authorize(p, keyOf(p)).catch((e) => e);
    expect(limited).toBeInstanceOf(ProviderError);
    expect(limited).not.toBeInstanceOf(ProviderRequestRejected);
    expect(limited.definite).toBe(true);
    const wrong = yookassaProvider({
      shopId: "100500",
      secretKey: "nope",
      apiBase: fake.apiBase,
      timeoutMs: 5_000,
    });
    expect(await wrong.authorize(p, keyOf(p)).catch((e) => e)).toBeInstanceOf(ProviderRequestRejected);
  });

  it("treats a refused connection as definite and a slow answer as unknown", async () => {
    const p = payment();
    const port = await unusedPort();
    const nowhere = yookassaProvider({
      shopId: "1",
      secretKey: "s",
      apiBase: `http://127.0.0.1:${port}/v3`,
      timeoutMs: 5_000,
    });
    expect(await nowhere.authorize(p, keyOf(p)).catch((e) => e)).toMatchObject({ definite: true });
    fake.delayNextAnswer(3_000);
    expect(await hasty.authorize(p, keyOf(p)).catch((e) => e)).toMatchObject({ definite: false });
  });

  it("reconciles a lost answer by replaying the key: one payment at YooKassa", async () => {
    const p = payment();
    fake.delayNextAnswer(3_000);
    await hasty.authorize(p, keyOf(p)).catch(() => {});
    const outcome = await yookassa.retrieve(p, keyOf(p));
    const made = [...fake.payments.values()].filter((x) => x.metadata.payment_id === p.paymentId);
    expect(made).toHaveLength(1);
    expect(outcome).toMatchObject({ status: "succeeded", providerPaymentId: made[0]?.id });
    expect(lastExecuted()?.path).toBe(`/v3/payments/${made[0]?.id}`);
  });
});

describe("yookassa notifications", () => {
  const notify = (
    event: string,
    id: string,
    clientIp = "185.71.76.5",
    object: Record<string, unknown> = {},
  ) => {
    const parseWebhook = yookassa.parseWebhook;
    if (!parseWebhook) throw new Error("yookassa has no parseWebhook");
    return parseWebhook({
      rawBody: JSON.stringify({ type: "notification", event, object: { id, ...object } }),
      headers: new Headers({ "Content-Type": "application/json" }),
      clientIp,
    });
  };

  it("believes only what the API says, not the notification body", async () => {
    const p = payment({ returnUrl: "https://shop.example/back" });
    const pending = await yookassa.authorize(p, keyOf(p));
    const id = pending.providerPaymentId ?? "";
    // The body claims success; YooKassa still has the payment pending: not confirmed, deliver it again later.
    const early = await notify("payment.succeeded", id, "185.71.76.5", {
      status: "succeeded",
      paid: true,
    }).catch((e) => e);
    expect(early).toBeInstanceOf(ProviderError);
    expect(early).not.toBeInstanceOf(WebhookRejected);
    expect(lastExecuted()?.method).toBe("GET");
    expect(lastExecuted()?.path).toBe(`/v3/payments/${id}`);

    fake.confirm(id, true);
    const later = await notify("payment.succeeded", id, "77.75.156.11");
    expect(later).toMatchObject({
      eventId: `payment.succeeded:${id}`,
      paymentId: p.paymentId,
      providerPaymentId: id,
    });
    expect(later.outcome).toMatchObject({ status: "succeeded", amountCaptured: 10_050 });
  });

  it("reports the current state when a notification arrives after the payment moved on", async () => {
    const p = payment({ captureMethod: "manual" });
    const held = await yookassa.authorize(p, keyOf(p));
    const id = held.providerPaymentId ?? "";
    await yookassa.capture({ ...p, providerPaymentId: id }, 10_050, keyOf(p, "capture"));
    const late = await notify("payment.waiting_for_capture", id);
    expect(late.outcome).toMatchObject({ status: "succeeded", amountCaptured: 10_050 });
  });

  it("reads refund notifications through the API too", async () => {
    const p = payment();
    const charged = { ...p, providerPaymentId: (await yookassa.authorize(p, keyOf(p))).providerPaymentId };
    await yookassa.refund(charged, { refundId: "re_n", amount: 100 }, "re_n:refund:1");
    const refund = [...fake.refunds.values()].find((r) => r.metadata.refund_id === "re_n");
    const parsed = await notify("refund.succeeded", refund?.id ?? "", "2a02:5180::1");
    expect(parsed).toMatchObject({
      providerPaymentId: charged.providerPaymentId,
      refund: { refundId: "re_n", providerRefundId: refund?.id, status: "succeeded" },
    });
  });

  it("rejects notifications from other addresses without asking the API", async () => {
    const before = fake.executed().length;
    await expect(notify("payment.succeeded", "x", "203.0.113.7")).rejects.toMatchObject({ reason: "ip" });
    await expect(notify("payment.succeeded", "x", "185.71.76.32")).rejects.toBeInstanceOf(WebhookRejected);
    await expect(notify("payment.succeeded", "x", "unknown")).rejects.toMatchObject({ reason: "ip" });
    expect(fake.executed()).toHaveLength(before);
  });

  it("answers a failed re-fetch with a ProviderError so the notification is delivered again", async () => {
    fake.failNext(1, 500);
    const error = await notify("payment.succeeded", "00000000-0000-0000-0000-000000000000").catch((e) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).not.toBeInstanceOf(WebhookRejected);
  });

  it("rejects a body that is not a notification", async () => {
    const parseWebhook = yookassa.parseWebhook;
    await expect(
      parseWebhook?.({ rawBody: "{oops", headers: new Headers(), clientIp: "185.71.77.1" }),
    ).rejects.toMatchObject({ reason: "malformed" });
  });
});

describe("ip allow list", () => {
  it("matches YooKassa's published ranges, IPv4-mapped addresses included", () => {
    const allowed = ipAllowList(YOOKASSA_NOTIFICATION_IPS);
    for (const ip of [
      "185.71.76.0",
      "185.71.76.31",
      "185.71.77.10",
      "77.75.153.127",
      "77.75.154.200",
      "77.75.156.35",
    ]) {
      expect(allowed(ip), ip).toBe(true);
    }
    expect(allowed("::ffff:185.71.76.1")).toBe(true);
    expect(allowed("2a02:5180:1::9")).toBe(true);
    for (const ip of [
      "185.71.76.32",
      "77.75.153.128",
      "77.75.156.12",
      "2a02:5181::1",
      "10.0.0.1",
      "",
      "not-an-ip",
    ]) {
      expect(allowed(ip), ip).toBe(false);
    }
  });

  it("refuses a malformed range at start-up", () => {
    expect(() => ipAllowList("185.71.76.0/33")).toThrow();
    expect(() => ipAllowList("example.com")).toThrow();
  });
});
