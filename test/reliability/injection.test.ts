import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { functions } from "../../functions/registry.ts";
import { openBackendDb, postgresSkipReason } from "../support/backends.ts";
import { orderWithPayment, startTestService, type TestService } from "../support/harness.ts";
import { checkInvariants } from "./invariants.ts";
import { type Answer, undocumented } from "./support/documented.ts";
import { type LiveApp, rawRequest, serveApp } from "./support/servers.ts";

/**
 * Hostile input beyond the fuzzing of fuzz.test.ts, aimed at the places it cannot reach by chance: SQL in every body
 * field, query parameter, path id and header of every API route (on the real PostgreSQL when it is here), path
 * traversal, and header injection on a real socket. Nothing of it may reach the database as SQL, leak SQL or files
 * in an answer, or inject a header into a response.
 */
const pgSkip = await postgresSkipReason();

const SQL = [
  "' OR '1'='1",
  "' OR 1=1 --",
  "'; DROP TABLE payments; --",
  "'); UPDATE orders SET amount = 1; --",
  "1; TRUNCATE audit_log; --",
  "x' UNION SELECT merchant_id, key, request_hash FROM idempotency_keys --",
  "' || (SELECT version()) || '",
  "$$; DELETE FROM refunds; $$",
  "\\'; DELETE FROM orders; --",
  "%' AND 1=1 --",
  "$1",
  "ord_' OR merchant_id <> 'acct_test",
  "pay_00000000000000000000000000000000' OR '1'='1",
  "1' AND pg_sleep(0) IS NOT NULL --",
  "/*",
  `"; SELECT * FROM "orders`,
];
// What a database error, a stack trace or a file would look like in an answer; none of it may ever appear there.
const LEAK =
  /syntax error|SQLSTATE|pg_catalog|relation "|column "|duplicate key|violates|unterminated|at [\w./]+\.ts:\d+|node_modules|root:x:0:0|"name":\s*"payment-service"|ECONNREFUSED/i;

let t: TestService;
let canary: { orderId: string; paymentId: string; amount: number };
let live: LiveApp;

beforeAll(async () => {
  t = await startTestService(pgSkip ? {} : { db: await openBackendDb("pg") });
  const { order, payment } = await orderWithPayment(t, { amount: 7_777, currency: "EUR" });
  await t.call("POST", `/v1/payments/${payment.id}/confirm`);
  canary = { orderId: order.id, paymentId: payment.id, amount: 7_777 };
  live = await serveApp(t.app);
});
afterAll(async () => {
  await live?.close();
  await t?.close();
});

const routes = Object.values(functions).flatMap((fn) => fn.routes);

/** A body each POST route accepts, to put one hostile value into at a time. */
function validBody(path: string): Record<string, unknown> {
  switch (path) {
    case "/v1/orders":
      return { amount: 1_000, currency: "USD", description: "d", metadata: { k: "v" } };
    case "/v1/payments":
      return {
        order_id: canary.orderId,
        payment_method: "pm_card_visa",
        capture_method: "automatic",
        return_url: "https://shop.example/back",
        description: "d",
        metadata: { k: "v" },
      };
    case "/v1/payments/:id/confirm":
      return { payment_method: "pm_card_visa", return_url: "https://shop.example/back" };
    case "/v1/payments/:id/capture":
      return { amount: 100 };
    case "/v1/payments/:id/cancel":
      return { reason: "requested_by_customer" };
    case "/v1/refunds":
      return { payment_id: canary.paymentId, amount: 1, reason: "requested_by_customer" };
    default:
      return {};
  }
}

const QUERY: Record<string, string[]> = {
  "/v1/orders": ["status", "limit", "starting_after", "ending_before"],
  "/v1/payments": ["status", "limit", "starting_after", "ending_before", "order_id"],
};

async function tableState() {
  const { rows } = await t.service.db.query<{ tables: string; amount: number; audit: number }>(
    `SELECT (SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables
             WHERE table_schema = current_schema()) AS tables,
            (SELECT amount FROM orders WHERE id = $1) AS amount,
            (SELECT count(*) FROM audit_log)::int AS audit`,
    [canary.orderId],
  );
  return rows[0];
}

function safe(answer: Answer, request: string): string[] {
  const problems: string[] = [];
  if (answer.status >= 500) problems.push(`${request}: ${answer.status}`);
  if (answer.status >= 400) {
    const why = undocumented(answer, [answer.body?.code]);
    if (why) problems.push(`${request}: ${why}`);
    if (LEAK.test(JSON.stringify(answer.body)))
      problems.push(`${request}: leaks ${JSON.stringify(answer.body)}`);
  }
  return problems;
}

describe("SQL injection", () => {
  it("in every body field, query parameter, path id and header: no 5xx, no leak, the tables intact", async () => {
    const before = await tableState();
    const problems: string[] = [];
    const stored: { path: string; id: string; payload: string; field: "description" | "metadata" }[] = [];
    for (const route of routes) {
      const method = route.method.toUpperCase();
      const path = route.path.replace(
        ":id",
        route.path.startsWith("/v1/orders") ? canary.orderId : canary.paymentId,
      );
      for (const payload of SQL) {
        const requests: { label: string; path: string; body?: unknown; headers?: Record<string, string> }[] =
          [];
        if (method === "POST") {
          const base = validBody(route.path);
          for (const field of Object.keys(base)) {
            requests.push({ label: `${field}`, path, body: { ...base, [field]: payload } });
          }
          if ("metadata" in base) {
            requests.push({
              label: "metadata key",
              path,
              body: { ...base, metadata: { [payload.slice(0, 40)]: payload } },
            });
          }
          requests.push({
            label: "Idempotency-Key",
            path,
            body: base,
            headers: { "Idempotency-Key": payload },
          });
        }
        for (const name of QUERY[route.path] ?? []) {
          requests.push({ label: `?${name}`, path: `${path}?${name}=${encodeURIComponent(payload)}` });
        }
        if (route.path.includes(":id")) {
          requests.push({
            label: ":id",
            path: route.path.replace(":id", encodeURIComponent(payload)),
            body: method === "POST" ? validBody(route.path) : undefined,
          });
        }
        requests.push({
          label: "X-Request-Id",
          path,
          body: method === "POST" ? {} : undefined,
          headers: { "X-Request-Id": payload },
        });
        for (const r of requests) {
          const answer = await t.call(method, r.path, { body: r.body, headers: r.headers });
          problems.push(...safe(answer, `${method} ${route.path} ${r.label}=${JSON.stringify(payload)}`));
          // Accepted as text (description, metadata): stored verbatim, read back verbatim.
          if (answer.status === 201 && (r.label === "description" || r.label === "metadata key")) {
            stored.push({
              path: route.path === "/v1/orders" ? "/v1/orders" : "/v1/payments",
              id: answer.body.id,
              payload,
              field: r.label === "description" ? "description" : "metadata",
            });
          }
        }
      }
    }
    expect(problems).toEqual([]);
    expect(stored.length).toBeGreaterThan(0);
    for (const s of stored) {
      const read = await t.call("GET", `${s.path}/${s.id}`);
      if (s.field === "description") expect(read.body.description).toBe(s.payload);
      else expect(Object.values(read.body.metadata)).toEqual([s.payload]);
    }
    const after = await tableState();
    expect(after?.tables).toBe(before?.tables);
    expect(after?.amount).toBe(canary.amount);
    expect(after?.audit).toBeGreaterThanOrEqual(before?.audit ?? 0);
    expect(await checkInvariants(t.service.db)).toEqual([]);
  }, 120_000);
});

describe("path traversal", () => {
  const attempts = [
    "/../../../../etc/passwd",
    "/v1/../../../etc/passwd",
    "/v1/orders/..%2f..%2f..%2fetc%2fpasswd",
    "/v1/orders/%2e%2e%2f%2e%2e%2fpackage.json",
    "/v1/payments/..%252f..%252fpackage.json",
    "/docs/../package.json",
    "/docs/..%2f..%2fpackage.json",
    "/openapi.json/../../package.json",
    "/sandbox/3ds/..%2f..%2f..%2fetc%2fpasswd",
    "/sandbox/3ds/../../package.json",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/v1/orders/....//....//etc/passwd",
    "/..\\..\\..\\package.json",
    "/v1/webhooks/..%2f..%2fpackage.json",
    "/v1/webhooks/../../etc/passwd",
    "/internal/../package.json",
  ];

  it.each(attempts)("GET %s serves no file and no 5xx (literal bytes on a socket)", async (path) => {
    const res = await rawRequest(live.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(res.status, res.statusLine).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body).not.toMatch(LEAK);
    expect(res.body).not.toContain("dependencies");
  });

  it.each(attempts)("POST %s too", async (path) => {
    const body = "{}";
    const res = await rawRequest(
      live.port,
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(res.status, res.statusLine).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body).not.toMatch(LEAK);
  });
});

describe("header injection", () => {
  const header = (res: Awaited<ReturnType<typeof rawRequest>>, name: string) =>
    res.headers.filter(([n]) => n === name).map(([, v]) => v);
  const get = (path: string, extra: string) =>
    rawRequest(live.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}Connection: close\r\n\r\n`);

  it("CRLF in X-Request-Id ends that header; nothing after it is echoed as a response header", async () => {
    const res = await get("/health", "X-Request-Id: abc\r\nSet-Cookie: evil=1\r\n");
    expect(header(res, "set-cookie")).toEqual([]);
    expect(header(res, "x-request-id")).toEqual(["abc"]);
  });

  it.each([
    ["a bare LF", "X-Request-Id: abc\nSet-Cookie: evil=1\r\n"],
    ["a bare CR", "X-Request-Id: abc\rSet-Cookie: evil=1\r\n"],
    ["a NUL", "X-Request-Id: abc\u0000def\r\n"],
    ["an obs-fold continuation", "X-Request-Id: abc\r\n Set-Cookie: evil=1\r\n"],
  ])("%s inside X-Request-Id: refused or replaced, never echoed", async (_what, line) => {
    const res = await get("/v1/orders", line);
    expect(header(res, "set-cookie")).toEqual([]);
    for (const id of header(res, "x-request-id")) expect(id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    expect(res.raw).not.toMatch(/\r\nSet-Cookie:/i);
    expect(res.status).toBeLessThan(500);
  });

  it("percent-encoded CRLF in a path, a query or an id never becomes a header", async () => {
    const token = await t.token();
    for (const path of [
      "/v1/orders/%0d%0aSet-Cookie:%20evil=1",
      "/v1/orders?starting_after=%0d%0aSet-Cookie:%20evil=1",
      "/v1/payments?order_id=x%0d%0aLocation:%20https://evil.example",
      "/sandbox/3ds/pay_%0d%0aSet-Cookie:%20evil=1",
    ]) {
      const res = await get(path, `Authorization: Bearer ${token}\r\n`);
      expect(res.raw, path).not.toMatch(/\r\n(Set-Cookie|Location): /i);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
    }
  });

  it("a return_url with encoded CRLF comes back percent-encoded in the 3-D Secure redirect, not as a header", async () => {
    const { payment } = await orderWithPayment(t, { payment_method: "pm_card_threeDSecureRequired" });
    const confirmed = await t.call("POST", `/v1/payments/${payment.id}/confirm`, {
      body: { return_url: "https://shop.example/back?x=%0d%0aSet-Cookie:%20evil=1" },
    });
    expect(confirmed.body.status).toBe("requires_action");
    const form = "action=complete";
    const res = await rawRequest(
      live.port,
      `POST /sandbox/3ds/${payment.id} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\nConnection: close\r\n\r\n${form}`,
    );
    expect(res.status).toBe(303);
    expect(header(res, "set-cookie")).toEqual([]);
    expect(header(res, "location")[0]).toMatch(/^https:\/\/shop\.example\/back\?x=%0[dD]%0[aA]Set-Cookie/);
    // A CRLF the URL parser would have to keep cannot even be stored.
    const raw = await t.call("POST", `/v1/payments/${payment.id}/confirm`, {
      body: { return_url: "https://shop.example/\r\nSet-Cookie: evil=1" },
    });
    expect(raw.status).not.toBe(500);
  });
});
