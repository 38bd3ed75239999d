import { type ServerType, serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestService, type TestService } from "../support/harness.ts";
import { type FakeYooKassa, startFakeYooKassa } from "./support/fake-yookassa.ts";
import { confirm, createPayment } from "./support/flows.ts";
import { unusedPort } from "./support/http-server.ts";

/** RUB payments through the API to a local YooKassa, and its notifications back through our webhook endpoint. */
let yookassa: FakeYooKassa;
let t: TestService;
let server: ServerType;
let base: string;

beforeAll(async () => {
  yookassa = await startFakeYooKassa("100500", "test_secret");
  const port = await unusedPort();
  base = `http://127.0.0.1:${port}`;
  t = await startTestService({
    env: {
      YOOKASSA_SHOP_ID: "100500",
      YOOKASSA_SECRET_KEY: "test_secret",
      YOOKASSA_API_BASE: yookassa.apiBase,
      // The test posts notifications from loopback, standing in for YooKassa's addresses.
      YOOKASSA_ALLOWED_IPS: "127.0.0.1,::1",
      PROVIDER_RETRIES: "0",
    },
  });
  server = serve({ fetch: t.app.fetch, port, hostname: "127.0.0.1" });
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await t.close();
  await yookassa.close();
});

const notify = (event: string, id: string) =>
  fetch(`${base}/v1/webhooks/yookassa`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ type: "notification", event, object: { id, status: "succeeded" } }),
  });

describe("YooKassa through the API", () => {
  it("routes RUB to YooKassa and captures part of a held payment, then refunds", async () => {
    const { order, payment } = await createPayment(t, {
      amount: 150_075,
      currency: "RUB",
      capture_method: "manual",
    });
    expect(payment.provider).toBe("yookassa");
    const held = await confirm(t, payment.id);
    expect(held.body).toMatchObject({ status: "requires_capture", amount_capturable: 150_075 });
    const sent = yookassa.payments.get(held.body.provider_payment_id);
    expect(sent).toMatchObject({ amount: { value: "1500.75", currency: "RUB" }, capture: false });

    const captured = await t.call("POST", `/v1/payments/${payment.id}/capture`, {
      body: { amount: 100_000 },
    });
    expect(captured.body).toMatchObject({ status: "succeeded", amount_captured: 100_000 });
    expect(yookassa.payments.get(held.body.provider_payment_id)?.amount.value).toBe("1000.00");

    const refunded = await t.call("POST", "/v1/refunds", {
      body: { payment_id: payment.id, amount: 25_050 },
    });
    expect(refunded.body).toMatchObject({ status: "succeeded", amount: 25_050 });
    expect([...yookassa.refunds.values()].at(-1)?.amount).toEqual({ value: "250.50", currency: "RUB" });
    expect((await t.call("GET", `/v1/orders/${order.id}`)).body).toMatchObject({
      amount_paid: 100_000,
      amount_refunded: 25_050,
    });
  });

  it("reports a decline with our failure code", async () => {
    yookassa.declineNext("card_expired");
    const { payment } = await createPayment(t, { currency: "RUB" });
    expect((await confirm(t, payment.id)).body).toMatchObject({
      status: "failed",
      failure: { code: "expired_card" },
    });
  });

  it("sends the customer to YooKassa's page, and settles on a notification only once the API confirms it", async () => {
    const { payment } = await createPayment(t, { currency: "RUB", return_url: "https://shop.example/back" });
    const pending = await confirm(t, payment.id);
    expect(pending.body).toMatchObject({
      status: "requires_action",
      next_action: { type: "redirect", redirect_url: expect.stringContaining("yoomoney.ru") },
    });
    const id = pending.body.provider_payment_id;

    // Claimed, not true yet: YooKassa still has it pending, so nothing moves and YooKassa is asked to repeat it.
    const early = await notify("payment.succeeded", id);
    expect(early.status).toBe(503);
    expect(early.headers.get("retry-after")).toBeTruthy();
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("requires_action");

    yookassa.confirm(id, true);
    const again = await notify("payment.succeeded", id);
    expect(again.status).toBe(200);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({
      status: "succeeded",
      amount_captured: 1999,
    });
  });
});
