import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orderWithPayment, startTestService, type TestService } from "../support/harness.ts";

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(() => t.close());

// What the service makes up when the caller sends none.
const GENERATED_ID = /^req_[0-9a-f]{32}$/;

describe("X-Request-Id on every kind of answer", () => {
  it("rides on successes, problems, replays, unknown routes and probes", async () => {
    const { payment } = await orderWithPayment(t);
    const answers = {
      success: await t.call("GET", `/v1/payments/${payment.id}`),
      created: await t.call("POST", "/v1/orders", { body: { amount: 100, currency: "USD" } }),
      problem: await t.call("POST", "/v1/orders", { body: { amount: -1, currency: "USD" } }),
      missing: await t.call("GET", `/v1/payments/pay_${"f".repeat(32)}`),
      unauthenticated: await t.call("GET", "/v1/orders", { token: null }),
      unknownRoute: await t.call("GET", "/v1/nothing-here"),
      health: await t.call("GET", "/health", { token: null }),
      ready: await t.call("GET", "/ready", { token: null }),
    };
    for (const [name, answer] of Object.entries(answers)) {
      expect(answer.headers.get("x-request-id"), name).toMatch(GENERATED_ID);
    }
    for (const name of ["problem", "missing", "unauthenticated", "unknownRoute"] as const) {
      expect(answers[name].body.request_id, name).toBe(answers[name].headers.get("x-request-id"));
    }
    expect(answers.success.status).toBe(200);
    expect(answers.success.headers.get("content-type")).toMatch(/^application\/json/);
    expect(answers.problem.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    // The merchant's limit is announced on every answer after the limiter counted the request, problems included.
    for (const name of ["success", "created", "problem", "missing"] as const) {
      expect(answers[name].headers.get("ratelimit-limit"), name).toBe("100000");
      expect(answers[name].headers.get("ratelimit-remaining"), name).toMatch(/^\d+$/);
    }
  });

  it("echoes a caller's id, also on an idempotent replay", async () => {
    const headers = { "X-Request-Id": "checkout-7f3a" };
    const first = await t.call("POST", "/v1/orders", {
      body: { amount: 250, currency: "EUR" },
      idempotencyKey: "request-id-replay",
      headers,
    });
    const replay = await t.call("POST", "/v1/orders", {
      body: { amount: 250, currency: "EUR" },
      idempotencyKey: "request-id-replay",
      headers,
    });
    expect(first.status).toBe(201);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(first.headers.get("x-request-id")).toBe("checkout-7f3a");
    expect(replay.headers.get("x-request-id")).toBe("checkout-7f3a");
  });
});
