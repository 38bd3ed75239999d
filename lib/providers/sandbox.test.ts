import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type LocalServer,
  sleep,
  startLocalServer,
  unusedPort,
} from "../../test/providers/support/http-server.ts";
import { openTestDb } from "../../test/support/harness.ts";
import type { Db } from "../db/db.ts";
import { newId } from "../payments/ids.ts";
import { signPayload } from "./hmac-signature.ts";
import {
  type PaymentProvider,
  ProviderError,
  type ProviderPayment,
  ProviderRequestRejected,
} from "./provider.ts";
import { recordAuthentication, sandboxProvider } from "./sandbox.ts";

const SECRET = "whsec_sandbox_test";
let db: Db;
let sandbox: PaymentProvider;
let receiver: LocalServer;
let answers: number[] = [];

beforeAll(async () => {
  db = await openTestDb();
  // Our webhook endpoint as the sandbox sees it: answers from `answers` in turn, then 200.
  receiver = await startLocalServer((_req, res) => {
    res.writeHead(answers.shift() ?? 200);
    res.end();
  });
  sandbox = sandboxProvider({
    db,
    latencyMs: 0,
    publicBaseUrl: receiver.url,
    webhookSecret: SECRET,
    asyncDelayMs: 50,
    webhookAttempts: 4,
    webhookInitialDelayMs: 20,
  });
});
afterAll(async () => {
  await receiver.close();
  await db.close();
});

const payment = (paymentMethod: string, overrides: Partial<ProviderPayment> = {}): ProviderPayment => ({
  paymentId: newId("pay"),
  merchantId: "acct_1",
  amount: 2500,
  currency: "EUR",
  paymentMethod,
  captureMethod: "automatic",
  ...overrides,
});
const key = (p: ProviderPayment, op = "authorize") => `${p.paymentId}:${op}:1`;
const ledger = async (p: ProviderPayment) =>
  (
    await db.query<{ operation: string; status: string; amount: number }>(
      "SELECT operation, status, amount FROM sandbox_charges WHERE payment_id = $1 ORDER BY created_at",
      [p.paymentId],
    )
  ).rows;

describe("sandbox authorize", () => {
  it.each([
    ["pm_card_visa", { status: "succeeded", amountCaptured: 2500 }],
    ["pm_card_mastercard", { status: "succeeded" }],
    ["pm_card_mir", { status: "succeeded" }],
    ["pm_card_chargeDeclined", { status: "failed", failure: { code: "card_declined" } }],
    ["pm_card_insufficientFunds", { status: "failed", failure: { code: "insufficient_funds" } }],
    ["pm_card_expired", { status: "failed", failure: { code: "expired_card" } }],
    ["pm_card_unknownToSandbox", { status: "failed", failure: { code: "card_declined" } }],
  ])("%s → %j", async (method, expected) => {
    const p = payment(method);
    expect(await sandbox.authorize(p, key(p))).toMatchObject(expected);
  });

  it("answers a repeated key with the first answer and records one charge", async () => {
    const p = payment("pm_card_visa");
    const first = await sandbox.authorize(p, key(p));
    const again = await sandbox.authorize({ ...p, paymentMethod: "pm_card_chargeDeclined" }, key(p));
    expect(again).toEqual(first);
    expect(await ledger(p)).toHaveLength(1);
  });

  it("redirects pm_card_threeDSecureRequired to the hosted page", async () => {
    const p = payment("pm_card_threeDSecureRequired");
    expect(await sandbox.authorize(p, key(p))).toMatchObject({
      status: "requires_action",
      nextAction: { type: "redirect", redirect_url: `${receiver.url}/sandbox/3ds/${p.paymentId}` },
    });
  });

  it("fails pm_card_providerError definitely, recording nothing", async () => {
    const p = payment("pm_card_providerError");
    const error = await sandbox.authorize(p, key(p)).catch((e) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.definite).toBe(true);
    expect(await ledger(p)).toEqual([]);
  });

  it("charges pm_card_providerTimeout but loses the answer; retrieve tells", async () => {
    const p = payment("pm_card_providerTimeout");
    const error = await sandbox.authorize(p, key(p)).catch((e) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.definite).toBe(false);
    expect(await ledger(p)).toEqual([{ operation: "authorize", status: "succeeded", amount: 2500 }]);
    expect(await sandbox.retrieve(p, key(p))).toMatchObject({ status: "succeeded", amountCaptured: 2500 });
  });

  it("processes an authorize that never arrived when asked about it, once", async () => {
    const p = payment("pm_card_visa");
    expect(await sandbox.retrieve(p, key(p))).toMatchObject({ status: "succeeded" });
    expect(await sandbox.retrieve(p, key(p))).toMatchObject({ status: "succeeded" });
    expect(await ledger(p)).toHaveLength(1);
  });
});

describe("sandbox asynchronous payments", () => {
  it("settles pm_card_async later and notifies us, retrying while our endpoint answers 5xx", async () => {
    answers = [503, 500];
    const before = receiver.requests.length;
    const p = payment("pm_card_async");
    expect(await sandbox.authorize(p, key(p))).toMatchObject({ status: "processing" });
    // A retry of the same request is the same charge: it must not start a second notification.
    expect(await sandbox.authorize(p, key(p))).toMatchObject({ status: "processing" });
    for (let i = 0; i < 250 && receiver.requests.length < before + 3; i++) await sleep(20);
    await sleep(200);
    const deliveries = receiver.requests.slice(before);
    expect(deliveries).toHaveLength(3);
    expect(deliveries.every((d) => d.path === "/v1/webhooks/sandbox")).toBe(true);
    expect(new Set(deliveries.map((d) => d.body)).size).toBe(1);

    const delivered = deliveries[2];
    const notification = await sandbox.parseWebhook?.({
      rawBody: delivered?.body ?? "",
      headers: new Headers(delivered?.headers as Record<string, string>),
      clientIp: "127.0.0.1",
    });
    expect(notification).toMatchObject({
      eventId: expect.stringMatching(/^evt_sbx_[0-9a-f]{32}$/),
      type: "payment.succeeded",
      paymentId: p.paymentId,
      outcome: { status: "succeeded", amountCaptured: 2500 },
    });
    expect(JSON.parse(delivered?.body ?? "{}")).toMatchObject({
      type: "payment.succeeded",
      data: { payment_id: p.paymentId, amount: 2500, currency: "EUR" },
    });
    expect(await sandbox.retrieve(p, key(p))).toMatchObject({ status: "succeeded" });
  });

  it("has settled an asynchronous payment by its delay even when no notification got through", async () => {
    const port = await unusedPort();
    const unreachable = sandboxProvider({
      db,
      latencyMs: 0,
      publicBaseUrl: `http://127.0.0.1:${port}`,
      webhookSecret: SECRET,
      asyncDelayMs: 30,
      webhookAttempts: 1,
    });
    const p = payment("pm_card_async", { captureMethod: "manual" });
    await unreachable.authorize(p, key(p));
    await sleep(60);
    expect(await unreachable.retrieve(p, key(p))).toMatchObject({
      status: "requires_capture",
      amountCapturable: 2500,
    });
  });
});

describe("sandbox capture, cancel, refund", () => {
  it("captures part of an authorization once, and never more than authorized", async () => {
    const p = payment("pm_card_visa", { captureMethod: "manual" });
    await sandbox.authorize(p, key(p));
    await expect(sandbox.capture(p, 2501, key(p, "capture"))).rejects.toBeInstanceOf(ProviderRequestRejected);
    expect(await sandbox.capture(p, 2000, key(p, "capture"))).toMatchObject({
      status: "succeeded",
      amountCaptured: 2000,
    });
    expect(await sandbox.capture(p, 2000, key(p, "capture"))).toMatchObject({ amountCaptured: 2000 });
    await expect(sandbox.capture(p, 100, `${key(p, "capture")}x`)).rejects.toBeInstanceOf(
      ProviderRequestRejected,
    );
    expect(await sandbox.retrieve(p, key(p))).toMatchObject({ status: "succeeded", amountCaptured: 2000 });
  });

  it("voids an authorization but not a captured payment", async () => {
    const held = payment("pm_card_visa", { captureMethod: "manual" });
    await sandbox.authorize(held, key(held));
    expect((await sandbox.cancel(held, key(held, "cancel"))).status).toBe("canceled");
    expect((await sandbox.retrieve(held, key(held))).status).toBe("canceled");
    const charged = payment("pm_card_visa");
    await sandbox.authorize(charged, key(charged));
    await expect(sandbox.cancel(charged, key(charged, "cancel"))).rejects.toBeInstanceOf(
      ProviderRequestRejected,
    );
  });

  it("refunds up to what was captured, one answer per key", async () => {
    const p = payment("pm_card_visa");
    await sandbox.authorize(p, key(p));
    expect(await sandbox.refund(p, { refundId: "re_1", amount: 2000 }, "re_1:refund:1")).toBe("succeeded");
    expect(await sandbox.refund(p, { refundId: "re_2", amount: 501 }, "re_2:refund:1")).toBe("failed");
    expect(await sandbox.refund(p, { refundId: "re_3", amount: 500 }, "re_3:refund:1")).toBe("succeeded");
    expect(await sandbox.refund(p, { refundId: "re_1", amount: 2000 }, "re_1:refund:1")).toBe("succeeded");
    expect(await sandbox.retrieveRefund?.(p, { refundId: "re_2", amount: 501 }, "re_2:refund:1")).toBe(
      "failed",
    );
  });
});

describe("sandbox 3-D Secure answers", () => {
  it("records the first answer and reports it to retrieve", async () => {
    const p = payment("pm_card_threeDSecureRequired");
    await sandbox.authorize(p, key(p));
    expect(await recordAuthentication(db, p, receiver.url, true)).toMatchObject({ status: "succeeded" });
    expect(await recordAuthentication(db, p, receiver.url, false)).toMatchObject({ status: "succeeded" });
    expect(await sandbox.retrieve(p, key(p))).toMatchObject({ status: "succeeded", amountCaptured: 2500 });
  });

  it("fails authentication on Fail, and has nothing to authenticate for other payments", async () => {
    const p = payment("pm_card_threeDSecureRequired", { captureMethod: "manual" });
    await sandbox.authorize(p, key(p));
    expect(await recordAuthentication(db, p, receiver.url, false)).toMatchObject({
      status: "failed",
      failure: { code: "authentication_failed" },
    });
    const plain = payment("pm_card_visa");
    await sandbox.authorize(plain, key(plain));
    expect(await recordAuthentication(db, plain, receiver.url, true)).toBeUndefined();
  });
});

describe("sandbox notifications", () => {
  const body = JSON.stringify({
    id: `evt_sbx_${"a".repeat(32)}`,
    type: "payment.succeeded",
    created: Math.floor(Date.now() / 1000),
    data: { payment_id: `pay_${"b".repeat(32)}`, provider_payment_id: "sbx_1", amount: 100, currency: "USD" },
  });
  const parse = (raw: string, signature: string) =>
    sandbox.parseWebhook?.({
      rawBody: raw,
      headers: new Headers({ "Sandbox-Signature": signature }),
      clientIp: "x",
    });

  it("accepts its own signature and nothing else", async () => {
    await expect(parse(body, signPayload(SECRET, body))).resolves.toMatchObject({
      paymentId: `pay_${"b".repeat(32)}`,
    });
    await expect(parse(body, signPayload("other", body))).rejects.toMatchObject({ reason: "signature" });
    const old = Math.floor(Date.now() / 1000) - 600;
    await expect(parse(body, signPayload(SECRET, body, old))).rejects.toMatchObject({ reason: "stale" });
    const odd = JSON.stringify({ id: "evt_1", type: "payment.succeeded" });
    await expect(parse(odd, signPayload(SECRET, odd))).rejects.toMatchObject({ reason: "malformed" });
  });
});
