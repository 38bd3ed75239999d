import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containsPan } from "../../lib/payments/pan.ts";
import { orderWithPayment, startTestService, type TestService } from "../../test/support/harness.ts";

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(() => t.close());

describe("POST /v1/orders", () => {
  it("creates a pending order in minor units", async () => {
    const res = await t.call("POST", "/v1/orders", {
      body: { amount: 1999, currency: "USD", description: "Coffee", metadata: { sku: "A-1" } },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      object: "order",
      amount: 1999,
      currency: "USD",
      status: "pending",
      description: "Coffee",
      metadata: { sku: "A-1" },
      amount_paid: 0,
      amount_refunded: 0,
    });
    expect(res.body.id).toMatch(/^ord_[0-9a-f]{32}$/);
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it.each([
    [{ amount: 19.99, currency: "USD" }, "amount"],
    [{ amount: -1, currency: "USD" }, "amount"],
    [{ amount: 0, currency: "USD" }, "amount"],
    [{ amount: 100_000_000_000, currency: "USD" }, "amount"],
    [{ amount: "1999", currency: "USD" }, "amount"],
    [{ amount: 1999, currency: "usd" }, "currency"],
    [{ amount: 1999, currency: "XXX" }, "currency"],
    [{ currency: "USD" }, "amount"],
    [{ amount: 1999, currency: "USD", metadata: { k: 1 } }, "metadata.k"],
    [
      {
        amount: 1999,
        currency: "USD",
        metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, "v"])),
      },
      "metadata",
    ],
    [{ amount: 1999, currency: "USD", extra: true }, "extra"],
  ])("rejects %j naming the field %s", async (body, path) => {
    const res = await t.call("POST", "/v1/orders", { body });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body.code).toBe("validation_failed");
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
  });

  it("rejects a card number in free text and stores nothing", async () => {
    const before = await t.service.db.query<{ n: number }>("SELECT count(*)::int AS n FROM orders");
    for (const description of ["card 4242424242424242", "4242 4242 4242 4242", "5555-5555-5555-4444"]) {
      const res = await t.call("POST", "/v1/orders", { body: { amount: 100, currency: "USD", description } });
      expect(res.status).toBe(400);
      expect(res.body.errors[0].path).toBe("description");
    }
    const meta = await t.call("POST", "/v1/orders", {
      body: { amount: 100, currency: "USD", metadata: { note: "pan 4000056655665556" } },
    });
    expect(meta.body.errors[0].path).toBe("metadata.note");
    const after = await t.service.db.query<{ n: number }>("SELECT count(*)::int AS n FROM orders");
    expect(after.rows[0]?.n).toBe(before.rows[0]?.n);
  });

  it("accepts digit runs that are not card numbers", async () => {
    const res = await t.call("POST", "/v1/orders", {
      body: { amount: 100, currency: "USD", description: "order 4242424242424241" },
    });
    expect(res.status).toBe(201);
  });

  it("answers 415 for a body that is not JSON, 400 for malformed JSON, 413 for a large body", async () => {
    const text = await t.call("POST", "/v1/orders", {
      body: "amount=1",
      headers: { "Content-Type": "text/plain" },
    });
    expect(text.status).toBe(415);
    expect(text.body.code).toBe("unsupported_media_type");
    const bad = await t.call("POST", "/v1/orders", { body: "{not json" });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("validation_failed");
    const big = await t.call("POST", "/v1/orders", {
      body: { amount: 1, currency: "USD", description: "x".repeat(70 * 1024) },
    });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe("payload_too_large");
  });
});

describe("POST /v1/payments", () => {
  it("creates a payment with the order's amount and currency", async () => {
    const { order, payment } = await orderWithPayment(t, { amount: 500, currency: "JPY" });
    expect(payment).toMatchObject({
      object: "payment",
      order_id: order.id,
      amount: 500,
      currency: "JPY",
      status: "requires_confirmation",
      provider: "sandbox",
      capture_method: "automatic",
    });
    expect(payment.id).toMatch(/^pay_/);
  });

  it("rejects an unknown order with 404 naming order_id, and a bad token", async () => {
    const missing = await t.call("POST", "/v1/payments", {
      body: { order_id: `ord_${"0".repeat(32)}`, payment_method: "pm_card_visa" },
    });
    expect(missing.status).toBe(404);
    expect(missing.body.errors[0].path).toBe("order_id");
    const bad = await t.call("POST", "/v1/payments", { body: { order_id: "ord_1", payment_method: "card" } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { path: string }) => e.path).sort()).toEqual([
      "order_id",
      "payment_method",
    ]);
  });

  it("answers 409 for an order that is no longer pending", async () => {
    const { order } = await orderWithPayment(t);
    expect((await t.call("POST", `/v1/orders/${order.id}/cancel`)).status).toBe(200);
    const res = await t.call("POST", "/v1/payments", {
      body: { order_id: order.id, payment_method: "pm_card_visa" },
    });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe("invalid_state");
  });

  it("answers 400 naming provider for one not configured, and writes nothing for any refusal", async () => {
    const written = async () =>
      (
        await t.service.db.query<{ n: number }>(
          "SELECT (SELECT count(*) FROM payments) + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM audit_log) AS n",
        )
      ).rows[0]?.n;
    const { order } = await orderWithPayment(t);
    const before = await written();
    const res = await t.call("POST", "/v1/payments", {
      body: { order_id: order.id, payment_method: "pm_card_visa", provider: "stripe" },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ path: "provider", message: "Provider is not configured." }]);
    // A missing order is named before the provider.
    const missing = await t.call("POST", "/v1/payments", {
      body: { order_id: `ord_${"1".repeat(32)}`, payment_method: "pm_card_visa", provider: "stripe" },
    });
    expect(missing.status).toBe(404);
    expect(missing.body.errors[0].path).toBe("order_id");
    expect(await written()).toBe(before);
    // And a canceled order before the provider.
    expect((await t.call("POST", `/v1/orders/${order.id}/cancel`)).status).toBe(200);
    const afterCancel = await written();
    const canceled = await t.call("POST", "/v1/payments", {
      body: { order_id: order.id, payment_method: "pm_card_visa", provider: "stripe" },
    });
    expect(canceled.status).toBe(409);
    expect(await written()).toBe(afterCancel);
  });
});

describe("ids are not card numbers", () => {
  it("accepts an order id whose digit run happens to pass the Luhn check", async () => {
    // A real id shape with a 16-digit Luhn-valid run inside it.
    const id = "ord_01a21ca7a5fa7004a744029112943816";
    expect(containsPan(id)).toBe(true);
    const res = await t.call("POST", "/v1/payments", {
      body: { order_id: id, payment_method: "pm_card_visa" },
    });
    expect(res.status).toBe(404); // validated as an id and looked up, not rejected as a PAN
  });
});
