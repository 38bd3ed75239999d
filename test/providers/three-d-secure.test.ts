import { existsSync } from "node:fs";
import { type ServerType, serve } from "@hono/node-server";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestService, type TestService } from "../support/harness.ts";
import { confirm, createPayment, withThreeDSecurePage } from "./support/flows.ts";
import { type LocalServer, startLocalServer, unusedPort } from "./support/http-server.ts";

/** The sandbox's hosted 3-D Secure page, clicked through in a real (headless) browser. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available) {
  process.stderr.write(
    `${CHROMIUM} not found (apt-get install chromium): 3-D Secure browser tests skipped\n`,
  );
}

describe.skipIf(!available)("3-D Secure page in Chromium", () => {
  let t: TestService;
  let server: ServerType;
  let shop: LocalServer;
  let browser: Browser;

  beforeAll(async () => {
    const port = await unusedPort();
    t = await startTestService({ env: { PUBLIC_BASE_URL: `http://127.0.0.1:${port}` } });
    withThreeDSecurePage(t);
    server = serve({ fetch: t.app.fetch, port, hostname: "127.0.0.1" });
    // The merchant's site the customer returns to.
    shop = await startLocalServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end("<!doctype html><title>Shop</title><h1>Thank you</h1>");
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await shop?.close();
    if (server) await new Promise((resolve) => server.close(resolve));
    await t?.close();
  });

  async function openChallenge(fields: Record<string, unknown> = {}) {
    const { payment } = await createPayment(t, {
      amount: 123_456,
      currency: "EUR",
      payment_method: "pm_card_threeDSecureRequired",
      return_url: `${shop.url}/return?order=42`,
      ...fields,
    });
    const confirmed = await confirm(t, payment.id);
    expect(confirmed.body.status).toBe("requires_action");
    const page = await browser.newPage();
    await page.goto(confirmed.body.next_action.redirect_url);
    return { payment, page };
  }

  it("Complete: back at the shop with status succeeded, and the payment succeeded", async () => {
    const { payment, page } = await openChallenge();
    expect(await page.locator(".amount").textContent()).toBe("1234.56 EUR");
    expect(await page.content()).not.toContain(payment.order_id);
    await Promise.all([
      page.waitForURL(`${shop.url}/return?**`),
      page.getByRole("button", { name: "Complete" }).click(),
    ]);
    const url = new URL(page.url());
    expect(url.pathname).toBe("/return");
    expect(Object.fromEntries(url.searchParams)).toEqual({
      order: "42",
      payment_id: payment.id,
      status: "succeeded",
    });
    expect(await page.locator("h1").textContent()).toBe("Thank you");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({
      status: "succeeded",
      amount_captured: 123_456,
    });
    await page.close();
  });

  it("Fail: back at the shop with status failed, and the payment failed authentication", async () => {
    const { payment, page } = await openChallenge();
    await Promise.all([
      page.waitForURL(`${shop.url}/return?**`),
      page.getByRole("button", { name: "Fail" }).click(),
    ]);
    expect(new URL(page.url()).searchParams.get("status")).toBe("failed");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({
      status: "failed",
      failure: { code: "authentication_failed" },
    });
    // Going back and answering again changes nothing: the page now shows the result.
    await page.goBack();
    await page.reload();
    expect(await page.locator("#status").textContent()).toBe("failed");
    await page.close();
  });

  it("Complete on a manual-capture payment leaves it authorized for capture", async () => {
    const { payment, page } = await openChallenge({ capture_method: "manual" });
    await Promise.all([
      page.waitForURL(`${shop.url}/return?**`),
      page.getByRole("button", { name: "Complete" }).click(),
    ]);
    expect(new URL(page.url()).searchParams.get("status")).toBe("requires_capture");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({
      status: "requires_capture",
      amount_capturable: 123_456,
    });
    await page.close();
  });
});
