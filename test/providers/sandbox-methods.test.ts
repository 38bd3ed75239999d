import { type ServerType, serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reconcile } from "../../lib/payments/reconcile.ts";
import { startTestService, type TestService } from "../support/harness.ts";
import { confirm, createPayment, eventually, recordsOf, withThreeDSecurePage } from "./support/flows.ts";
import { unusedPort } from "./support/http-server.ts";

/** Every row of the sandbox's test payment methods (API.md), through the HTTP API. */
let t: TestService;
let server: ServerType;
let base: string;

beforeAll(async () => {
  // Served on a real port too: pm_card_async's notification comes back over HTTP to PUBLIC_BASE_URL.
  const port = await unusedPort();
  base = `http://127.0.0.1:${port}`;
  t = await startTestService({
    env: { PUBLIC_BASE_URL: base, SANDBOX_ASYNC_DELAY_MS: "100", PROVIDER_RETRIES: "1" },
  });
  withThreeDSecurePage(t);
  server = serve({ fetch: t.app.fetch, port, hostname: "127.0.0.1" });
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await t.close();
});

const orderOf = async (id: string) => (await t.call("GET", `/v1/orders/${id}`)).body;

describe("approved cards", () => {
  it.each(["pm_card_visa", "pm_card_mastercard", "pm_card_mir"])(
    "%s succeeds and pays the order",
    async (method) => {
      const { order, payment } = await createPayment(t, { payment_method: method });
      const res = await confirm(t, payment.id);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        status: "succeeded",
        provider: "sandbox",
        provider_payment_id: expect.stringMatching(/^sbx_/),
        amount_captured: 1999,
        failure: null,
      });
      expect(await orderOf(order.id)).toMatchObject({ status: "paid", amount_paid: 1999 });
    },
  );

  it.each(["pm_card_visa", "pm_card_mastercard", "pm_card_mir"])(
    "%s with manual capture is authorized only",
    async (method) => {
      const { order, payment } = await createPayment(t, { payment_method: method, capture_method: "manual" });
      const res = await confirm(t, payment.id);
      expect(res.body).toMatchObject({
        status: "requires_capture",
        amount_capturable: 1999,
        amount_captured: 0,
      });
      expect((await orderOf(order.id)).status).toBe("pending");
    },
  );
});

describe("declines", () => {
  it.each([
    ["pm_card_chargeDeclined", "card_declined"],
    ["pm_card_insufficientFunds", "insufficient_funds"],
    ["pm_card_expired", "expired_card"],
  ])("%s is a 200 with status failed and failure.code %s", async (method, code) => {
    const { order, payment } = await createPayment(t, { payment_method: method });
    const res = await confirm(t, payment.id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "failed", failure: { code, message: expect.any(String) } });
    expect((await orderOf(order.id)).status).toBe("pending");
    // Terminal: a second confirm is refused.
    expect((await confirm(t, payment.id)).status).toBe(409);
  });
});

describe("pm_card_threeDSecureRequired", () => {
  const submit = (id: string, action: string) =>
    t.app.request(`/sandbox/3ds/${id}`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ action }).toString(),
    });

  it("asks for a redirect; Complete succeeds and goes back to return_url", async () => {
    const { payment } = await createPayment(t, {
      payment_method: "pm_card_threeDSecureRequired",
      return_url: "https://shop.example/done?cart=7",
    });
    const res = await confirm(t, payment.id);
    expect(res.body).toMatchObject({
      status: "requires_action",
      next_action: { type: "redirect", redirect_url: `${base}/sandbox/3ds/${payment.id}` },
    });
    const page = await t.app.request(`/sandbox/3ds/${payment.id}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("19.99 USD");

    const back = await submit(payment.id, "complete");
    expect(back.status).toBe(303);
    const location = new URL(back.headers.get("location") ?? "");
    expect(`${location.origin}${location.pathname}`).toBe("https://shop.example/done");
    expect(Object.fromEntries(location.searchParams)).toEqual({
      cart: "7",
      payment_id: payment.id,
      status: "succeeded",
    });
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({
      status: "succeeded",
      next_action: null,
    });
  });

  it("Fail fails the payment with authentication_failed; a second answer changes nothing", async () => {
    const { payment } = await createPayment(t, { payment_method: "pm_card_threeDSecureRequired" });
    await confirm(t, payment.id, { return_url: "https://shop.example/back" });
    const back = await submit(payment.id, "fail");
    expect(new URL(back.headers.get("location") ?? "").searchParams.get("status")).toBe("failed");
    await submit(payment.id, "complete");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({
      status: "failed",
      failure: { code: "authentication_failed" },
    });
    const { audit } = await recordsOf(t, payment.id);
    expect(audit.filter((a) => a.status_after === "failed")).toHaveLength(1);
  });

  it("shows a result page when there is no return_url, and 404 for unknown ids", async () => {
    const { payment } = await createPayment(t, { payment_method: "pm_card_threeDSecureRequired" });
    await confirm(t, payment.id);
    const done = await submit(payment.id, "complete");
    expect(done.status).toBe(200);
    expect(await done.text()).toContain("succeeded");
    expect((await t.app.request(`/sandbox/3ds/pay_${"0".repeat(32)}`)).status).toBe(404);
    expect((await t.app.request("/sandbox/3ds/not-an-id")).status).toBe(404);
    expect((await submit(payment.id, "maybe")).status).toBe(400);
    expect((await submit(payment.id, `complete&pad=${"x".repeat(2_000)}`)).status).toBe(413);
  });
});

describe("pm_card_async", () => {
  it("is processing, then the sandbox's signed notification makes it succeeded", async () => {
    const { order, payment } = await createPayment(t, { payment_method: "pm_card_async" });
    const res = await confirm(t, payment.id);
    expect(res.body.status).toBe("processing");
    const settled = await eventually(async () => {
      const current = await t.call("GET", `/v1/payments/${payment.id}`);
      return current.body.status === "processing" ? undefined : current.body;
    });
    expect(settled).toMatchObject({ status: "succeeded", amount_captured: 1999 });
    expect((await orderOf(order.id)).status).toBe("paid");
    const { events } = await recordsOf(t, payment.id);
    expect(events.filter((e) => e === "io.payment-service.payment.succeeded")).toHaveLength(1);
  });
});

describe("provider failures", () => {
  it("pm_card_providerError answers 502 provider_unavailable and leaves the payment confirmable", async () => {
    const { payment } = await createPayment(t, { payment_method: "pm_card_providerError" });
    const res = await confirm(t, payment.id);
    expect(res.status).toBe(502);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body).toMatchObject({ code: "provider_unavailable", status: 502 });
    expect(res.body.detail).not.toMatch(/sandbox provider answered/);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("requires_confirmation");
    const retried = await confirm(t, payment.id, { payment_method: "pm_card_visa" });
    expect(retried.body).toMatchObject({ status: "succeeded" });
  });

  it("pm_card_providerTimeout stays processing until reconciliation settles it", async () => {
    const { order, payment } = await createPayment(t, { payment_method: "pm_card_providerTimeout" });
    const res = await confirm(t, payment.id);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("processing");
    expect((await orderOf(order.id)).status).toBe("pending");
    await reconcile(t.service, { olderThanSeconds: 0 });
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({ status: "succeeded" });
    expect((await orderOf(order.id)).status).toBe("paid");
  });
});
