import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signPayload } from "../../lib/providers/hmac-signature.ts";
import { sandboxEventId, sandboxNotificationBody } from "../events/support.ts";
import { type FakeStripe, startFakeStripe } from "../providers/support/fake-stripe.ts";
import { type FakeYooKassa, startFakeYooKassa } from "../providers/support/fake-yookassa.ts";
import { orderWithPayment, startTestService, type TestService } from "../support/harness.ts";
import { type LiveApp, serveApp } from "./support/servers.ts";

/**
 * Provider notifications that are not authentic — forged, tampered, stale or from the future, a signature moved to
 * another body, from an address outside the allow-list, too large — are refused before anything is stored: the
 * provider_events table, the payments, the audit trail and the outbox are exactly as before. A genuine one replayed
 * is acknowledged and applied once. Sent over a real port, as providers send them.
 */
const SANDBOX_SECRET = "whsec_reliability_sandbox_0123456789";
const STRIPE_SECRET = "whsec_reliability_stripe_0123456789";

let t: TestService;
let live: LiveApp;
let stripe: FakeStripe;
let yookassa: FakeYooKassa;

beforeAll(async () => {
  [stripe, yookassa] = await Promise.all([
    startFakeStripe("sk_test_rel"),
    startFakeYooKassa("100500", "yk_secret"),
  ]);
  t = await startTestService({
    env: {
      SANDBOX_WEBHOOK_SECRET: SANDBOX_SECRET,
      SANDBOX_ASYNC_DELAY_MS: "3600000",
      STRIPE_SECRET_KEY: "sk_test_rel",
      STRIPE_WEBHOOK_SECRET: STRIPE_SECRET,
      STRIPE_API_BASE: stripe.url,
      YOOKASSA_SHOP_ID: "100500",
      YOOKASSA_SECRET_KEY: "yk_secret",
      YOOKASSA_API_BASE: yookassa.apiBase,
      // YooKassa's published range only: the test's loopback address is outside it.
      YOOKASSA_ALLOWED_IPS: "185.71.76.0/27",
      PROVIDER_ROUTES: "RUB=yookassa,*=sandbox",
    },
  });
  live = await serveApp(t.app);
});
afterAll(async () => {
  await live?.close();
  await t?.close();
  await stripe?.close();
  await yookassa?.close();
});

/** Everything a notification could change. */
async function snapshot() {
  const { rows } = await t.service.db.query(
    `SELECT (SELECT count(*) FROM provider_events)::int AS events,
            (SELECT COALESCE(sum(deliveries), 0) FROM provider_events)::int AS deliveries,
            (SELECT md5(COALESCE(string_agg(id || status || amount_captured || updated_at, ',' ORDER BY id), ''))
               FROM payments) AS payments,
            (SELECT count(*) FROM audit_log)::int AS audit,
            (SELECT count(*) FROM outbox)::int AS outbox`,
  );
  return rows[0];
}

async function post(provider: string, body: string, headers: Record<string, string>) {
  const res = await fetch(`${live.url}/v1/webhooks/${provider}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A pm_card_async payment waiting for the sandbox's notification, and that notification, genuine. */
async function waitingPayment() {
  const { payment } = await orderWithPayment(t, { payment_method: "pm_card_async", amount: 2_000 });
  const confirmed = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
  expect(confirmed.body.status).toBe("processing");
  const body = sandboxNotificationBody({ paymentId: payment.id, type: "payment.succeeded", amount: 2_000 });
  return { payment, body };
}

const now = () => Math.floor(Date.now() / 1000);

describe("sandbox notifications that are not authentic are refused and store nothing", () => {
  const cases: [string, (body: string) => { body: string; headers: Record<string, string> }][] = [
    [
      "signed with another secret",
      (body) => ({ body, headers: { "Sandbox-Signature": signPayload("whsec_guess", body) } }),
    ],
    ["without a signature", (body) => ({ body, headers: {} })],
    [
      "with a malformed signature header",
      (body) => ({ body, headers: { "Sandbox-Signature": "t=abc,v1=zz" } }),
    ],
    [
      "tampered after signing",
      (body) => ({
        body: body.replace('"amount":2000', '"amount":1'),
        headers: { "Sandbox-Signature": signPayload(SANDBOX_SECRET, body) },
      }),
    ],
    [
      "stale (signed 301 s ago)",
      (body) => ({ body, headers: { "Sandbox-Signature": signPayload(SANDBOX_SECRET, body, now() - 301) } }),
    ],
    [
      // Time passes between signing and checking (seconds on a loaded machine): 301 s ahead could arrive 300 s ahead.
      "from the future (signed 330 s ahead)",
      (body) => ({ body, headers: { "Sandbox-Signature": signPayload(SANDBOX_SECRET, body, now() + 330) } }),
    ],
    [
      "carrying the signature of another notification",
      (body) => ({
        body,
        headers: {
          "Sandbox-Signature": signPayload(SANDBOX_SECRET, body.replace(/evt_sbx_\w+/, sandboxEventId())),
        },
      }),
    ],
  ];

  it.each(cases)("%s: 400, nothing stored", async (_what, forge) => {
    const { payment, body } = await waitingPayment();
    const before = await snapshot();
    const forged = forge(body);
    const res = await post("sandbox", forged.body, forged.headers);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: "validation_failed", errors: [{ path: "signature" }] });
    expect(await snapshot()).toEqual(before);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("processing");
  });

  it("over 64 KiB, even correctly signed: 413, nothing stored", async () => {
    const { body } = await waitingPayment();
    const padded = body.replace('"currency"', `"padding":"${"x".repeat(70_000)}","currency"`);
    const before = await snapshot();
    const res = await post("sandbox", padded, { "Sandbox-Signature": signPayload(SANDBOX_SECRET, padded) });
    expect(res.status).toBe(413);
    expect(await snapshot()).toEqual(before);
  });
});

describe("a genuine notification replayed", () => {
  it("is acknowledged each time and applied once: one audit row, one event, one success", async () => {
    const { payment, body } = await waitingPayment();
    const headers = { "Sandbox-Signature": signPayload(SANDBOX_SECRET, body) };
    const first = await post("sandbox", body, headers);
    expect(first.body).toMatchObject({ received: true, result: "applied" });
    const after = await snapshot();
    for (let i = 0; i < 3; i++) {
      const again = await post("sandbox", body, headers);
      expect(again.status).toBe(200);
      expect(again.body.result).toBe("duplicate");
    }
    const replayed = await snapshot();
    expect({ ...replayed, deliveries: 0 }).toEqual({ ...after, deliveries: 0 });
    expect(replayed?.deliveries).toBe((after?.deliveries as number) + 3);
    const audit = await t.service.db.query(
      "SELECT 1 FROM audit_log WHERE object_id = $1 AND status_after = 'succeeded'",
      [payment.id],
    );
    expect(audit.rowCount).toBe(1);
  });

  it("replayed after the tolerance, with its original signature: 400, nothing stored", async () => {
    const { body } = await waitingPayment();
    const old = signPayload(SANDBOX_SECRET, body, now() - 3_600);
    const before = await snapshot();
    expect((await post("sandbox", body, { "Sandbox-Signature": old })).status).toBe(400);
    expect(await snapshot()).toEqual(before);
  });
});

describe("other providers", () => {
  const stripeEvent = JSON.stringify({
    id: "evt_reliability_1",
    type: "payment_intent.succeeded",
    created: now(),
    data: { object: { id: "pi_1", object: "payment_intent", status: "succeeded", metadata: {} } },
  });

  it.each([
    ["forged", () => signPayload("whsec_guess", stripeEvent)],
    ["stale", () => signPayload(STRIPE_SECRET, stripeEvent, now() - 301)],
    ["missing", () => ""],
  ])("Stripe, signature %s: 400, nothing stored", async (_what, signature) => {
    const before = await snapshot();
    const header = signature();
    const res = await post("stripe", stripeEvent, header ? { "Stripe-Signature": header } : {});
    expect(res.status).toBe(400);
    expect(await snapshot()).toEqual(before);
  });

  it("YooKassa from an address outside its allow-list (X-Forwarded-For not believed): 400, nothing stored, API not asked", async () => {
    const body = JSON.stringify({
      type: "notification",
      event: "payment.succeeded",
      object: { id: "2d0f6c2e-000f-5000-9000-1b2d3c4e5f60", status: "succeeded" },
    });
    const asked = yookassa.requests.length;
    const before = await snapshot();
    const spoofs: Record<string, string>[] = [
      {},
      { "X-Forwarded-For": "185.71.76.1" },
      { "X-Real-IP": "185.71.76.1" },
    ];
    for (const headers of spoofs) {
      const res = await post("yookassa", body, headers);
      expect(res.status).toBe(400);
      expect(res.body.errors[0].path).toBe("client_ip");
    }
    expect(await snapshot()).toEqual(before);
    expect(yookassa.requests.length).toBe(asked);
  });

  it("a provider that is not configured, or does not exist: 404, nothing stored", async () => {
    const before = await snapshot();
    for (const name of ["paypal", "..%2fsandbox", "SANDBOX"]) {
      expect((await post(name, "{}", {})).status).toBe(404);
    }
    expect(await snapshot()).toEqual(before);
  });
});
