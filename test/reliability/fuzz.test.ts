import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { functions } from "../../functions/registry.ts";
import { orderWithPayment, startTestService, type TestService } from "../support/harness.ts";

/**
 * Property-based fuzzing of every JSON API route: hostile bodies, headers, query strings and ids. The service must
 * never answer 5xx, never hang, always answer problem+json with a code of the closed list when it rejects, and
 * write nothing when it rejects.
 */
let t: TestService;
let ids: { order: string; payment: string };
beforeAll(async () => {
  t = await startTestService();
  const { order, payment } = await orderWithPayment(t);
  ids = { order: order.id, payment: payment.id };
});
afterAll(() => t.close());

const routes = Object.values(functions).flatMap((fn) => fn.routes);
const CODES = [
  "validation_failed",
  "unauthenticated",
  "insufficient_scope",
  "not_found",
  "invalid_state",
  "idempotency_key_in_use",
  "payload_too_large",
  "unsupported_media_type",
  "idempotency_key_reused",
  "rate_limited",
  "provider_unavailable",
];

const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.constantFrom(
    "' OR 1=1 --",
    "'; DROP TABLE payments; --",
    '" OR ""="',
    "1; SELECT pg_sleep(10)",
    "../../etc/passwd",
    "%00",
    "\u0000",
    "\r\nX-Injected: 1",
    "<script>alert(1)</script>",
    "ord_' OR '1'='1",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a log4shell probe is a literal string on purpose
    "${jndi:ldap://x}",
    "4242424242424242",
    "😀".repeat(100),
    "a".repeat(5000),
  ),
);
const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 99_999_999_999, 100_000_000_000),
);
const leaf = fc.oneof(hostileString, hostileNumber, fc.boolean(), fc.constant(null));
const hostileValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, tie("array"), tie("object")),
  array: fc.array(tie("value"), { maxLength: 5 }),
  object: fc.dictionary(
    fc.oneof(
      fc.string({ maxLength: 50 }),
      fc.constantFrom("amount", "currency", "metadata", "order_id", "__proto__", "constructor"),
    ),
    tie("value"),
    { maxKeys: 6 },
  ),
})).value;

/** Bodies shaped like the real ones with one or more fields replaced by hostile values. */
const nearValidBody = fc.record(
  {
    amount: fc.oneof(hostileNumber, hostileString),
    currency: fc.oneof(fc.constantFrom("USD", "usd", "XXX", "RUB"), hostileString),
    description: hostileString,
    metadata: hostileValue,
    order_id: fc.oneof(fc.constant("ORDER"), hostileString),
    payment_id: fc.oneof(fc.constant("PAYMENT"), hostileString),
    payment_method: fc.oneof(fc.constantFrom("pm_card_visa", "pm_card_async"), hostileString),
    capture_method: fc.oneof(fc.constantFrom("automatic", "manual"), hostileString),
    return_url: hostileString,
    reason: hostileString,
  },
  { requiredKeys: [] },
);

const body = fc.oneof(
  nearValidBody.map((b) =>
    JSON.stringify(b).replaceAll('"ORDER"', `"${ids.order}"`).replaceAll('"PAYMENT"', `"${ids.payment}"`),
  ),
  hostileValue.map((v) => JSON.stringify(v) ?? "null"),
  fc.string(),
  fc.constantFrom(
    "{",
    "[",
    '{"a":',
    "null",
    "1e99999",
    '{"amount": 1e400}',
    JSON.stringify({ a: nest(200) }),
  ),
);

function nest(depth: number): unknown {
  let v: unknown = {};
  for (let i = 0; i < depth; i++) v = { v };
  return v;
}

const query = fc.array(
  fc.tuple(
    fc.constantFrom("limit", "status", "starting_after", "ending_before", "order_id", "x"),
    hostileString,
  ),
  {
    maxLength: 4,
  },
);

// Header values must be ByteStrings without control characters (the HTTP client refuses others).
const headerValue = fc.oneof(
  fc.stringMatching(/^[\x20-\x7e]{0,200}$/),
  fc.constantFrom("id with spaces", "a".repeat(300), "x\u00e9", "ok-id"),
);

const contentType = fc.constantFrom(
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "application/x-www-form-urlencoded",
  "",
  "application/problem+json",
);

const tables = ["orders", "payments", "refunds", "audit_log", "outbox", "idempotency_keys"];
async function counts() {
  const out: Record<string, number> = {};
  for (const table of tables) {
    out[table] =
      (await t.service.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n ?? 0;
  }
  return out;
}

function fillPath(path: string, id: fc.Arbitrary<string>) {
  return id.map((value) =>
    path.replace(
      ":id",
      encodeURIComponent(value.replace("ORDER", ids.order).replace("PAYMENT", ids.payment)),
    ),
  );
}

describe.each(routes.map((r) => [`${r.method.toUpperCase()} ${r.path}`, r] as const))(
  "%s",
  (_name, route) => {
    it("never answers 5xx, always problem+json on rejection, writes nothing when it rejects", async () => {
      const idArb = fc.oneof(
        fc.constantFrom("ORDER", "PAYMENT", `pay_${"0".repeat(32)}`, "..", "%2e%2e%2f"),
        hostileString,
      );
      await fc.assert(
        fc.asyncProperty(
          fillPath(route.path, idArb),
          body,
          query,
          contentType,
          headerValue,
          async (path, raw, q, type, requestId) => {
            const qs = q.length ? `?${q.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&")}` : "";
            const before = await counts();
            const headers: Record<string, string> = { "X-Request-Id": requestId };
            if (type) headers["Content-Type"] = type;
            const res = await t.call(route.method.toUpperCase(), `${path}${qs}`, {
              body: route.method === "post" ? raw : undefined,
              headers,
            });
            expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
            if (res.status >= 400) {
              expect(res.headers.get("content-type")).toContain("application/problem+json");
              expect(CODES).toContain(res.body.code);
              expect(res.body.request_id).toBe(res.headers.get("x-request-id"));
              expect(await counts()).toEqual(before);
            }
            // A request id is echoed only when it is safe; never with CR/LF or over 128 characters.
            expect(res.headers.get("x-request-id")).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
          },
        ),
        { numRuns: route.method === "post" ? 60 : 40 },
      );
    }, 120_000);
  },
);

describe("oversized and odd requests", () => {
  it("answers 413 to a body over 64 KiB without reading it all, and 400 to deep nesting", async () => {
    const big = await t.call("POST", "/v1/orders", { body: `{"description":"${"x".repeat(200_000)}"}` });
    expect(big.status).toBe(413);
    const deep = await t.call("POST", "/v1/orders", { body: `${'{"v":'.repeat(5000)}{}${"}".repeat(5000)}` });
    expect(deep.status).toBe(400);
  });

  it("replaces an unsafe X-Request-Id (CRLF, too long) with a generated one", async () => {
    for (const bad of ["a".repeat(129), "id with spaces", "id\u00e9"]) {
      const res = await t.call("GET", "/v1/orders", { headers: { "X-Request-Id": bad } });
      expect(res.headers.get("x-request-id")).not.toBe(bad);
      expect(res.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
    }
    const good = await t.call("GET", "/v1/orders", { headers: { "X-Request-Id": "client-id_1.2:3" } });
    expect(good.headers.get("x-request-id")).toBe("client-id_1.2:3");
  });
});

/**
 * The routes outside the JSON API, which the properties above do not reach: provider notifications, CloudEvents from
 * the broker, the hosted 3-D Secure page and the internal outbox listing. None of them may answer 5xx to input it
 * cannot trust (a CloudEvent's 5xx asks the broker to retry, so one for garbage would be retried forever), and
 * nothing unauthenticated may be stored.
 */
describe("routes outside the JSON API", () => {
  const signature = fc.oneof(
    fc.constant(undefined),
    hostileString,
    fc
      .tuple(fc.integer({ min: 0, max: 2 ** 40 }), fc.stringMatching(/^[0-9a-f]{0,70}$/))
      .map(([ts, hex]) => `t=${ts},v1=${hex}`),
  );
  const provider = fc.oneof(fc.constantFrom("sandbox", "stripe", "yookassa", "SANDBOX"), hostileString);
  const notificationCounts = async () =>
    (await t.service.db.query<{ n: number }>("SELECT count(*)::int AS n FROM provider_events")).rows[0]?.n ??
    0;

  it("POST /v1/webhooks/:provider: 400, 404 or 413, never 5xx, nothing stored", async () => {
    await fc.assert(
      fc.asyncProperty(provider, body, signature, contentType, async (name, raw, sig, type) => {
        const before = { ...(await counts()), events: await notificationCounts() };
        const headers: Record<string, string> = {};
        if (type) headers["Content-Type"] = type;
        for (const h of ["Sandbox-Signature", "Stripe-Signature"]) if (sig !== undefined) headers[h] = sig;
        let res: Response;
        try {
          res = await t.app.request(`/v1/webhooks/${encodeURIComponent(name)}`, {
            method: "POST",
            headers,
            body: raw,
          });
        } catch {
          return; // a header value the Fetch API refuses never reaches the service
        }
        const text = await res.text();
        expect(res.status, text).toBeLessThan(500);
        expect([400, 404, 413]).toContain(res.status);
        expect(CODES).toContain(JSON.parse(text).code);
        expect({ ...(await counts()), events: await notificationCounts() }).toEqual(before);
      }),
      { numRuns: 80 },
    );
  }, 120_000);

  it("POST / (CloudEvents): hostile attributes and data are refused with 4xx, never 5xx, nothing stored", async () => {
    const ceHeader = fc.oneof(
      fc.constant(undefined),
      hostileString.filter((s) => /^[\x20-\x7e]*$/.test(s)),
    );
    await fc.assert(
      fc.asyncProperty(
        ceHeader,
        fc.oneof(fc.constant("io.payment-service.provider.notification"), ceHeader),
        ceHeader,
        fc.oneof(
          body,
          fc
            .record(
              { provider: provider, body: hostileString, headers: hostileValue, client_ip: hostileString },
              {
                requiredKeys: [],
              },
            )
            .map((d) => JSON.stringify(d)),
        ),
        async (id, type, ext, data) => {
          const before = { ...(await counts()), events: await notificationCounts() };
          const headers: Record<string, string> = {
            "Content-Type": "application/json",
            "ce-specversion": "1.0",
          };
          if (id !== undefined) headers["ce-id"] = id;
          if (type !== undefined) headers["ce-type"] = type;
          if (ext !== undefined) headers["ce-provider"] = ext;
          headers["ce-source"] = "/fuzz";
          const res = await t.app.request("/", { method: "POST", headers, body: data });
          const text = await res.text();
          expect(res.status, text).toBeGreaterThanOrEqual(400);
          expect(res.status, text).toBeLessThan(500);
          expect({ ...(await counts()), events: await notificationCounts() }).toEqual(before);
        },
      ),
      { numRuns: 80 },
    );
  }, 120_000);

  it("the 3-D Secure page: hostile ids and forms get 4xx pages, never 5xx, and change nothing", async () => {
    const form = fc.oneof(
      fc.constantFrom("action=complete", "action=fail", "action=", "", "action=complete&action=fail"),
      hostileString.map((s) => `action=${encodeURIComponent(s)}`),
      hostileString,
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom("PAYMENT", `pay_${"0".repeat(32)}`), hostileString),
        form,
        async (id, raw) => {
          const path = `/sandbox/3ds/${encodeURIComponent(id.replace("PAYMENT", ids.payment))}`;
          const before = await counts();
          const page = await t.app.request(path);
          expect(page.status).toBeLessThan(500);
          const post = await t.app.request(path, {
            method: "POST",
            headers: { "Content-Type": "application/x-www-form-urlencoded" },
            body: raw,
          });
          expect(post.status).toBeLessThan(500);
          // The fuzzed payment is not waiting for 3-D Secure: nothing may move.
          expect(await counts()).toEqual(before);
        },
      ),
      { numRuns: 60 },
    );
  }, 120_000);

  it("GET /internal/outbox: a hostile limit is 400, never 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(hostileString, async (limit) => {
        const res = await t.app.request(`/internal/outbox?limit=${encodeURIComponent(limit)}`);
        expect(res.status).toBeLessThan(500);
      }),
      { numRuns: 40 },
    );
  });
});
