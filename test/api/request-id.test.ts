import { once } from "node:events";
import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../lib/http/app.ts";
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
      metrics: await t.call("GET", "/metrics", { token: null }),
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
    // The limit is announced on every answer after a limiter counted the request, problems included: the
    // merchant's, or the client address's before authentication.
    for (const name of ["success", "created", "problem", "missing", "unauthenticated"] as const) {
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
    expect(replay.headers.get("ratelimit-limit")).toBe("100000");
  });

  it("rides on answers stored under an Idempotency-Key, successes and problems alike", async () => {
    const { payment } = await orderWithPayment(t);
    const cancel = (key: string) =>
      t.call("POST", `/v1/payments/${payment.id}/cancel`, { body: {}, idempotencyKey: key });
    const canceled = await cancel("cancel-once");
    const again = await cancel("cancel-twice");
    expect(canceled.status).toBe(200);
    expect(again.status).toBe(409);
    for (const [name, answer] of Object.entries({ canceled, again })) {
      expect(answer.headers.get("x-request-id"), name).toMatch(GENERATED_ID);
      expect(answer.headers.get("ratelimit-limit"), name).toBe("100000");
    }
    expect(again.body.request_id).toBe(again.headers.get("x-request-id"));
  });

  it("is written once on the wire, whichever way the answer was built", async () => {
    const { payment } = await orderWithPayment(t);
    const token = await t.token();
    const server = serve({ fetch: t.app.fetch, port: 0, hostname: "127.0.0.1" });
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    const rawHeaders = (method: string, path: string, headers: Record<string, string> = {}) =>
      new Promise<string[]>((resolve, reject) => {
        const req = request({ port, method, path, headers }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.rawHeaders));
        });
        req.on("error", reject);
        req.end(method === "POST" ? "{}" : undefined);
      });
    try {
      const auth = { Authorization: `Bearer ${token}` };
      const answers = {
        success: await rawHeaders("GET", `/v1/payments/${payment.id}`, auth),
        missing: await rawHeaders("GET", `/v1/payments/pay_${"e".repeat(32)}`, auth),
        unauthenticated: await rawHeaders("GET", "/v1/orders"),
        stored: await rawHeaders("POST", `/v1/payments/${payment.id}/cancel`, {
          ...auth,
          "Content-Type": "application/json",
          "Idempotency-Key": "wire-cancel",
        }),
        health: await rawHeaders("GET", "/health"),
        unknownRoute: await rawHeaders("GET", "/nothing"),
      };
      for (const [name, raw] of Object.entries(answers)) {
        const names = raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
        expect(
          names.filter((n) => n === "x-request-id"),
          name,
        ).toHaveLength(1);
        expect(new Set(names).size, `${name}: ${names.join(", ")}`).toBe(names.length);
      }
    } finally {
      server.close();
    }
  });
});

describe("X-Request-Id on an answer whose headers cannot be changed", () => {
  it("is added to a copy: a fetched Response is passed on as it is, with the id", async () => {
    const app = buildApp(t.service, [
      {
        name: "webhook",
        routes: [],
        // fetch() answers with immutable headers, as Response.error() and undici's Response.redirect() do.
        mount: (hono) => hono.get("/relayed", () => fetch("data:text/plain,relayed")),
      },
    ]);
    const res = await app.request("/relayed", { headers: { "X-Request-Id": "req_immutable" } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("relayed");
    expect(res.headers.get("x-request-id")).toBe("req_immutable");
  });
});
