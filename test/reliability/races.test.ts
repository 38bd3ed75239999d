import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCache } from "../../lib/cache/index.ts";
import type { PaymentProvider } from "../../lib/providers/provider.ts";
import { recordOperation } from "../../lib/providers/sandbox-ledger.ts";
import { sandboxEvent } from "../../lib/providers/sandbox-webhook.ts";
import { sandboxHeaders } from "../events/support.ts";
import { withThreeDSecurePage } from "../providers/support/flows.ts";
import {
  openBackendDb,
  postgresSkipReason,
  redisSkipReason,
  TEST_REDIS_URL,
  waitForCache,
} from "../support/backends.ts";
import { orderWithPayment, startTestService, type TestService } from "../support/harness.ts";
import { checkInvariants } from "./invariants.ts";
import { type Answer, type Expected, tally, undocumentedAnswers } from "./support/documented.ts";
import { freePort, type LiveApp, serveApp } from "./support/servers.ts";

/**
 * Races on the real PostgreSQL (node-postgres, a schema of this file's own, ten connections): many clients doing
 * conflicting things to one payment or order at the same moment. Afterwards every client holds either the
 * committed result or a documented error, and the invariants of the whole database hold (test/reliability/
 * invariants.ts: one charge at the provider, one succeeded payment per order, refunds within what was captured,
 * terminal states unchanged, an audit row and an outbox event per change, one idempotent result).
 */
const skip = await postgresSkipReason();
if (skip) process.stderr.write(`test/reliability/races: ${skip}\n`);

const POOL = { DB_POOL_MAX: "10" };

async function expectInvariants(t: TestService) {
  expect(await checkInvariants(t.service.db)).toEqual([]);
}

function check(answers: { request: string; answer: Answer; expected: readonly Expected[] }[]) {
  expect(undocumentedAnswers(answers)).toEqual([]);
}

const count = async (t: TestService, sql: string, params: unknown[]) =>
  (await t.service.db.query<{ n: number }>(sql, params)).rows[0]?.n ?? 0;

describe.skipIf(skip)("races on PostgreSQL", () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ db: await openBackendDb("pg", { env: POOL }) });
  });
  afterAll(() => t?.close());

  it("100 concurrent confirms of one payment: one charge, one 200, 99 × 409 invalid_state", async () => {
    const { order, payment } = await orderWithPayment(t, { amount: 4_999 });
    const answers = await Promise.all(
      Array.from({ length: 100 }, () => t.call("POST", `/v1/payments/${payment.id}/confirm`)),
    );
    check(answers.map((answer) => ({ request: "confirm", answer, expected: [200, "invalid_state"] })));
    expect(tally(answers)).toEqual({ "200": 1, "409 invalid_state": 99 });
    const winner = answers.find((a) => a.status === 200);
    expect(winner?.body).toMatchObject({ status: "succeeded", amount_captured: 4_999 });
    // The committed state is the state the winner was told.
    const { amount_captured, status } = (await t.call("GET", `/v1/payments/${payment.id}`)).body;
    expect({ amount_captured, status }).toEqual({ amount_captured: 4_999, status: "succeeded" });
    expect((await t.call("GET", `/v1/orders/${order.id}`)).body.status).toBe("paid");
    await expectInvariants(t);
  });

  it("confirm racing payment cancel and order cancel: one side wins whole, the rest is 409", async () => {
    for (let i = 0; i < 16; i++) {
      const manual = i % 2 === 1;
      const { order, payment } = await orderWithPayment(t, manual ? { capture_method: "manual" } : {});
      const [confirm, cancelPayment, cancelOrder] = await Promise.all([
        t.call("POST", `/v1/payments/${payment.id}/confirm`),
        t.call("POST", `/v1/payments/${payment.id}/cancel`, { body: { reason: "abandoned" } }),
        t.call("POST", `/v1/orders/${order.id}/cancel`),
      ]);
      check([
        { request: "confirm", answer: confirm, expected: [200, "invalid_state"] },
        { request: "cancel payment", answer: cancelPayment, expected: [200, "invalid_state"] },
        { request: "cancel order", answer: cancelOrder, expected: [200, "invalid_state"] },
      ]);
      const p = (await t.call("GET", `/v1/payments/${payment.id}`)).body;
      const o = (await t.call("GET", `/v1/orders/${order.id}`)).body;
      // What each client was told is what was committed.
      if (confirm.status === 200 && !manual) expect(p.status).toBe("succeeded");
      if (cancelOrder.status === 200) expect(o.status).toBe("canceled");
      if (cancelPayment.status === 200 || cancelOrder.status === 200) expect(p.status).toBe("canceled");
      // A charged payment is never canceled, a canceled order never paid.
      expect([
        "paid/succeeded",
        "canceled/canceled",
        "pending/canceled",
        "pending/requires_capture",
      ]).toContain(`${o.status}/${p.status}`);
    }
    await expectInvariants(t);
  });

  it("payment creates racing their order's cancel: a canceled order never keeps a live payment", async () => {
    for (let i = 0; i < 16; i++) {
      const order = (await t.call("POST", "/v1/orders", { body: { amount: 1_500, currency: "USD" } })).body;
      const create = () =>
        t.call("POST", "/v1/payments", { body: { order_id: order.id, payment_method: "pm_card_visa" } });
      const [first, cancel, second] = await Promise.all([
        create(),
        t.call("POST", `/v1/orders/${order.id}/cancel`),
        create(),
      ]);
      check([
        { request: "create payment", answer: first, expected: [201, "invalid_state"] },
        { request: "cancel order", answer: cancel, expected: [200, "invalid_state"] },
        { request: "create payment", answer: second, expected: [201, "invalid_state"] },
      ]);
      expect(cancel.status).toBe(200);
      // Each payment created before the cancel was canceled with the order; none was created after it.
      for (const created of [first, second].filter((answer) => answer.status === 201)) {
        expect((await t.call("GET", `/v1/payments/${created.body.id}`)).body.status).toBe("canceled");
      }
    }
    await expectInvariants(t);
  });

  it("cancel racing the customer's 3-D Secure answer: canceled and never charged, or charged and the cancel refused", async () => {
    withThreeDSecurePage(t);
    for (let i = 0; i < 16; i++) {
      const { order, payment } = await orderWithPayment(t, {
        payment_method: "pm_card_threeDSecureRequired",
        capture_method: i % 4 === 1 ? "manual" : "automatic",
      });
      const confirmed = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
      expect(confirmed.body.status).toBe("requires_action");
      const challenge = new URL(confirmed.body.next_action.redirect_url).pathname;
      // The payment's own cancel, or its order's (which cancels the payments still open).
      const [cancel, answered] = await Promise.all([
        i % 2 === 0
          ? t.call("POST", `/v1/payments/${payment.id}/cancel`, { body: { reason: "abandoned" } })
          : t.call("POST", `/v1/orders/${order.id}/cancel`),
        t.app.request(challenge, {
          method: "POST",
          body: new URLSearchParams({ action: i % 4 === 3 ? "fail" : "complete" }),
        }),
      ]);
      check([{ request: "cancel", answer: cancel, expected: [200, "invalid_state"] }]);
      expect(answered.status, "the 3-D Secure page").toBeLessThan(400);
      const p = (await t.call("GET", `/v1/payments/${payment.id}`)).body;
      // An order's cancel also succeeds over a payment whose authentication failed first.
      if (cancel.status === 200)
        expect(i % 2 === 0 ? ["canceled"] : ["canceled", "failed"]).toContain(p.status);
      else expect(["succeeded", "failed", "requires_capture"]).toContain(p.status);
    }
    // Among them: no payment canceled here that the provider charged (the ledger against our books).
    await expectInvariants(t);
  });

  it("two, three and four payments of one order confirmed at once: one charge per order", async () => {
    // Several orders at once: the confirms of one order race each other, and the winner's last step races the
    // losers' first (the deadlock this once found needed both).
    const sizes = Array.from({ length: 24 }, (_, i) => 2 + (i % 3));
    for (let round = 0; round < sizes.length; round += 6) {
      await Promise.all(
        sizes.slice(round, round + 6).map(async (n) => {
          const { order, payment } = await orderWithPayment(t);
          const others = await Promise.all(
            Array.from({ length: n - 1 }, () =>
              t.call("POST", "/v1/payments", {
                body: { order_id: order.id, payment_method: "pm_card_mastercard" },
              }),
            ),
          );
          const ids = [payment.id, ...others.map((o) => o.body.id as string)];
          const answers = await Promise.all(ids.map((id) => t.call("POST", `/v1/payments/${id}/confirm`)));
          check(answers.map((answer) => ({ request: "confirm", answer, expected: [200, "invalid_state"] })));
          expect(tally(answers)).toEqual({ "200": 1, "409 invalid_state": n - 1 });
          const charges = await count(
            t,
            "SELECT count(*)::int AS n FROM sandbox_charges WHERE payment_id = ANY($1::text[]) AND status = 'succeeded'",
            [ids],
          );
          expect(charges).toBe(1);
        }),
      );
    }
    await expectInvariants(t);
  });

  it("20 concurrent refunds, partial and 'the rest', never exceed what was captured", async () => {
    const { payment } = await orderWithPayment(t, { amount: 1_999 });
    expect((await t.call("POST", `/v1/payments/${payment.id}/confirm`)).body.status).toBe("succeeded");
    const bodies = Array.from({ length: 20 }, (_, i) =>
      i % 4 === 3 ? { payment_id: payment.id } : { payment_id: payment.id, amount: 100 + i * 7 },
    );
    const answers = await Promise.all(bodies.map((body) => t.call("POST", "/v1/refunds", { body })));
    check(answers.map((answer) => ({ request: "refund", answer, expected: [201, "validation_failed"] })));
    const refunded = answers.filter((a) => a.status === 201).reduce((sum, a) => sum + a.body.amount, 0);
    // One "refund the rest" always gets through (nothing else can take the last cent), so all of it is refunded.
    expect(refunded).toBe(1_999);
    expect(answers.filter((a) => a.status === 201).every((a) => a.body.status === "succeeded")).toBe(true);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.amount_refunded).toBe(1_999);
    await expectInvariants(t);
  });

  it("one Idempotency-Key on 50 concurrent confirms: one charge, everyone gets that result or 409 in use", async () => {
    const { payment } = await orderWithPayment(t);
    const key = `confirm-${payment.id}`;
    const send = () =>
      t.call("POST", `/v1/payments/${payment.id}/confirm`, { idempotencyKey: key, body: {} });
    const answers = await Promise.all(Array.from({ length: 50 }, send));
    check(
      answers.map((answer) => ({ request: "confirm", answer, expected: [200, "idempotency_key_in_use"] })),
    );
    const results = answers.filter((a) => a.status === 200);
    expect(results.length).toBeGreaterThanOrEqual(1);
    expect(new Set(results.map((a) => JSON.stringify(a.body))).size).toBe(1);
    expect(results[0]?.body.status).toBe("succeeded");
    // Once it finished, the key answers with the same result, replayed.
    const later = await send();
    expect(later.headers.get("idempotent-replayed")).toBe("true");
    expect(later.body).toEqual(results[0]?.body);
    expect(
      await count(
        t,
        "SELECT count(*)::int AS n FROM audit_log WHERE object_id = $1 AND action = 'payment.confirm'",
        [payment.id],
      ),
    ).toBe(1);
    await expectInvariants(t);
  });

  it("one Idempotency-Key on 50 concurrent creates with two different bodies: one order, 409 or 422 for the rest", async () => {
    const key = `create-${randomBytes(4).toString("hex")}`;
    const bodies = [
      { amount: 1_111, currency: "EUR" },
      { amount: 2_222, currency: "EUR" },
    ];
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        t.call("POST", "/v1/orders", { body: bodies[i % 2], idempotencyKey: key }).then((answer) => ({
          answer,
          body: bodies[i % 2],
        })),
      ),
    );
    check(
      answers.map(({ answer }) => ({
        request: "create order",
        answer,
        expected: [201, "idempotency_key_in_use", "idempotency_key_reused"],
      })),
    );
    const created = answers.filter((a) => a.answer.status === 201);
    expect(new Set(created.map((a) => a.answer.body.id)).size).toBe(1);
    // Only requests with the winning body may see its result; the other body is refused, never served it.
    const winning = created[0]?.body;
    for (const a of answers) {
      if (a.answer.status === 201) expect(a.body).toEqual(winning);
      if (a.answer.status === 422) expect(a.body).not.toEqual(winning);
    }
    expect(
      await count(
        t,
        "SELECT count(*)::int AS n FROM orders WHERE amount IN (1111, 2222) AND currency = 'EUR'",
        [],
      ),
    ).toBe(1);
    await expectInvariants(t);
  });
});

describe.skipIf(skip || (await redisSkipReason()))("idempotency races with the Redis lock in front", () => {
  let t: TestService;
  beforeAll(async () => {
    const cache = await openCache({
      redisUrl: TEST_REDIS_URL,
      redisKeyPrefix: `rel-races:${randomBytes(4).toString("hex")}:`,
    });
    await waitForCache(cache);
    t = await startTestService({ db: await openBackendDb("pg", { env: POOL }), cache });
  });
  afterAll(() => t?.close());

  it("one Idempotency-Key on 50 concurrent creates: one order, the same answer or 409 in use", async () => {
    const body = { amount: 3_333, currency: "JPY" };
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => t.call("POST", "/v1/orders", { body, idempotencyKey: "redis-burst" })),
    );
    check(
      answers.map((answer) => ({ request: "create", answer, expected: [201, "idempotency_key_in_use"] })),
    );
    const created = answers.filter((a) => a.status === 201);
    expect(new Set(created.map((a) => JSON.stringify(a.body))).size).toBe(1);
    expect(await count(t, "SELECT count(*)::int AS n FROM orders WHERE amount = 3333", [])).toBe(1);
    await expectInvariants(t);
  });
});

describe.skipIf(skip)("confirm racing the provider's webhook (pm_card_async)", () => {
  let t: TestService;
  let live: LiveApp;
  beforeAll(async () => {
    // The sandbox notifies us through a real port, at once: its webhook races the confirm's last step.
    const port = await freePort();
    t = await startTestService({
      db: await openBackendDb("pg", { env: POOL }),
      env: { PUBLIC_BASE_URL: `http://127.0.0.1:${port}`, SANDBOX_ASYNC_DELAY_MS: "0" },
    });
    live = await serveApp(t.app, port);
  });
  afterAll(async () => {
    await live?.close();
    await t?.close();
  });

  const secret = () => t.config.providers.sandbox.webhookSecret;
  /** The sandbox's own notification of the payment's success: same event id as the one it sends itself. */
  const notification = (payment: { id: string; amount: number; currency: string }) =>
    JSON.stringify(
      sandboxEvent(
        payment.id,
        {
          status: "succeeded",
          providerPaymentId: `sbx_${payment.id.slice(4)}`,
          amountCaptured: payment.amount,
        },
        payment.amount,
        payment.currency,
        new Date(),
      ),
    );
  const deliver = (body: string) =>
    fetch(`${live.url}/v1/webhooks/sandbox`, {
      method: "POST",
      headers: sandboxHeaders(secret(), body),
      body,
    }).then(async (res) => ({ status: res.status, headers: res.headers, body: await res.json() }) as Answer);

  it("a confirm, the sandbox's webhook and two redeliveries at once: applied once, every answer documented", async () => {
    const answers: { request: string; answer: Answer; expected: Expected[] }[] = [];
    const payments = await Promise.all(
      Array.from({ length: 12 }, () => orderWithPayment(t, { payment_method: "pm_card_async" })),
    );
    await Promise.all(
      payments.map(async ({ payment }, i) => {
        const body = notification(payment);
        const early = new Promise((resolve) => setTimeout(resolve, i % 4));
        const [confirm, ...deliveries] = await Promise.all([
          t.call("POST", `/v1/payments/${payment.id}/confirm`),
          early.then(() => deliver(body)),
          early.then(() => deliver(body)),
        ]);
        answers.push({ request: "confirm", answer: confirm as Answer, expected: [200] });
        expect(["processing", "succeeded"]).toContain(confirm?.body.status);
        // Stored but not applicable while the payment was not yet sent to the provider: delivered again later.
        for (const d of deliveries)
          answers.push({ request: "webhook", answer: d, expected: [200, "service_unavailable"] });
      }),
    );
    check(answers);
    // The provider keeps delivering until it gets a 2xx; here the sandbox's own retries do.
    await expect
      .poll(
        async () =>
          count(
            t,
            "SELECT count(*)::int AS n FROM payments WHERE id = ANY($1::text[]) AND status = 'succeeded'",
            [payments.map((p) => p.payment.id)],
          ),
        { timeout: 15_000, interval: 100 },
      )
      .toBe(payments.length);
    for (const { payment } of payments) {
      const applied = await count(
        t,
        "SELECT count(*)::int AS n FROM audit_log WHERE object_id = $1 AND status_after = 'succeeded'",
        [payment.id],
      );
      expect(applied).toBe(1);
    }
    await expectInvariants(t);
  });

  it("a webhook that lands between the provider's answer and the confirm's commit wins; confirm reports it", async () => {
    const { order, payment } = await orderWithPayment(t, { payment_method: "pm_card_async", amount: 777 });
    const original = t.service.providers;
    const sandbox = original.get("sandbox") as PaymentProvider;
    // The provider settles and notifies us before its answer to our call comes back.
    const overtaking: PaymentProvider = {
      ...sandbox,
      async authorize(p, key) {
        const outcome = await sandbox.authorize(p, key);
        await recordOperation(t.service.db, `${p.paymentId}:complete`, p, "complete", p.amount, "succeeded");
        const delivered = await deliver(notification(payment));
        expect(delivered.body).toMatchObject({ received: true, result: "applied" });
        return outcome;
      },
    };
    t.service.providers = {
      ...original,
      get: (name) => (name === "sandbox" ? overtaking : original.get(name)),
    };
    try {
      const confirmed = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
      expect(confirmed.status).toBe(200);
      expect(confirmed.body).toMatchObject({ status: "succeeded", amount_captured: 777 });
    } finally {
      t.service.providers = original;
    }
    expect((await t.call("GET", `/v1/orders/${order.id}`)).body).toMatchObject({
      status: "paid",
      amount_paid: 777,
    });
    await expectInvariants(t);
  });
});
