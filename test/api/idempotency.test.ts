import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orderWithPayment, startTestService, type TestService } from "../support/harness.ts";

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(() => t.close());

const count = async (table: string) =>
  (await t.service.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n ?? 0;

describe("Idempotency-Key", () => {
  it("replays the first response with Idempotent-Replayed and runs nothing twice", async () => {
    const before = await count("orders");
    const body = { amount: 700, currency: "GBP" };
    const first = await t.call("POST", "/v1/orders", { body, idempotencyKey: "order-1" });
    const second = await t.call("POST", "/v1/orders", { body, idempotencyKey: "order-1" });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    expect(await count("orders")).toBe(before + 1);
  });

  it("replays errors too (a 4xx is a final answer)", async () => {
    const { payment } = await orderWithPayment(t);
    await t.call("POST", `/v1/payments/${payment.id}/cancel`);
    const a = await t.call("POST", `/v1/payments/${payment.id}/confirm`, {
      idempotencyKey: "confirm-canceled",
    });
    const b = await t.call("POST", `/v1/payments/${payment.id}/confirm`, {
      idempotencyKey: "confirm-canceled",
    });
    expect(a.status).toBe(409);
    expect(b.status).toBe(409);
    expect(b.headers.get("idempotent-replayed")).toBe("true");
  });

  it("answers 422 when the key is reused with a different body, path or method", async () => {
    await t.call("POST", "/v1/orders", { body: { amount: 1, currency: "USD" }, idempotencyKey: "reuse" });
    const otherBody = await t.call("POST", "/v1/orders", {
      body: { amount: 2, currency: "USD" },
      idempotencyKey: "reuse",
    });
    expect(otherBody.status).toBe(422);
    expect(otherBody.body.code).toBe("idempotency_key_reused");
    const otherPath = await t.call("POST", "/v1/payments", {
      body: { amount: 1, currency: "USD" },
      idempotencyKey: "reuse",
    });
    expect([400, 422]).toContain(otherPath.status);
  });

  it("answers 409 while the first request is still in flight", async () => {
    // A claimed key with no response yet is exactly what an in-flight request leaves behind.
    await t.service.db.query(
      `INSERT INTO idempotency_keys (merchant_id, key, request_hash, locked_until, expires_at)
       VALUES ('acct_test', 'in-flight', $1, now() + interval '1 minute', now() + interval '1 day')`,
      [
        (await import("../../lib/http/idempotency.ts")).requestFingerprint(
          "POST",
          "/v1/orders",
          '{"amount":5,"currency":"USD"}',
        ),
      ],
    );
    const res = await t.call("POST", "/v1/orders", {
      body: '{"amount":5,"currency":"USD"}',
      idempotencyKey: "in-flight",
    });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe("idempotency_key_in_use");
    expect(res.headers.get("retry-after")).toBeTruthy();
  });

  it("20 concurrent creates with one key make one order", async () => {
    const before = await count("orders");
    const body = { amount: 4200, currency: "RUB" };
    const results = await Promise.all(
      Array.from({ length: 20 }, () => t.call("POST", "/v1/orders", { body, idempotencyKey: "burst" })),
    );
    expect(await count("orders")).toBe(before + 1);
    const created = results.filter((r) => r.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(new Set(created.map((r) => r.body.id)).size).toBe(1);
    for (const r of results) expect([201, 409]).toContain(r.status);
  });

  it("rejects a key that is not printable ASCII or too long", async () => {
    const res = await t.call("POST", "/v1/orders", {
      body: { amount: 1, currency: "USD" },
      idempotencyKey: "k".repeat(256),
    });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].path).toBe("header.Idempotency-Key");
  });
});

describe("a keyed create whose response was never stored (the process died after the commit)", () => {
  it("answers the retry after the lease with the order it created, not a second one", async () => {
    const before = await count("orders");
    const body = { amount: 321, currency: "USD" };
    const first = await t.call("POST", "/v1/orders", { body, idempotencyKey: "died-after-commit" });
    // As if the process died before storing the response: the record is back to in flight, its lease over.
    await t.service.db.query(
      `UPDATE idempotency_keys SET response_status = NULL, response_body = NULL, locked_until = now() - interval '1 second'
       WHERE key = 'died-after-commit'`,
    );
    const retry = await t.call("POST", "/v1/orders", { body, idempotencyKey: "died-after-commit" });
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first.body);
    expect(await count("orders")).toBe(before + 1);
    const third = await t.call("POST", "/v1/orders", { body, idempotencyKey: "died-after-commit" });
    expect(third.headers.get("idempotent-replayed")).toBe("true");
    expect(third.body.id).toBe(first.body.id);
  });
});
