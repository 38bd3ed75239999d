import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db, Queryable } from "../../lib/db/db.ts";
import { reconcile } from "../../lib/payments/reconcile.ts";
import { type PaymentProvider, ProviderError } from "../../lib/providers/provider.ts";
import { createProviders } from "../../lib/providers/registry.ts";
import { sandboxProvider } from "../../lib/providers/sandbox.ts";
import { openTestDb, orderWithPayment, startTestService, type TestService } from "../support/harness.ts";
import { checkInvariants } from "./invariants.ts";

/**
 * The moments between two commits of a money-moving request, made to fail on purpose, one at a time: the database
 * lost after a payment went to processing, after a refund was reserved, after the change committed but before its
 * Idempotency-Key result was stored; a provider whose retry is refused after an attempt that may have charged.
 * Each time the client is told what was committed, a retry under the same key never moves money twice, and the
 * invariants hold once reconciliation ran. (The load tests in faults.test.ts and crash.test.ts hit these moments
 * by chance; these hit them every time.)
 */
let t: TestService;
/** SQL fragments whose next execution fails as if the connection had been cut. */
const failNext: string[] = [];
/** Every statement run, in order, for tests that check which writes a request made. */
const statements: string[] = [];

function lostConnection(): Error {
  return Object.assign(new Error("Connection terminated unexpectedly"), { code: "08006" });
}

/** The test database, with a switch that makes the next statement matching a fragment fail. */
function breakable(db: Db): Db {
  const check = (sql: string) => {
    statements.push(sql);
    const i = failNext.findIndex((fragment) => sql.includes(fragment));
    if (i >= 0) {
      failNext.splice(i, 1);
      throw lostConnection();
    }
  };
  const wrap = (q: Queryable): Queryable => ({
    query: async (sql, params) => {
      check(sql);
      return q.query(sql, params);
    },
    exec: (sql) => q.exec(sql),
  });
  return { ...db, ...wrap(db), transaction: (fn) => db.transaction((tx) => fn(wrap(tx))) };
}

const count = async (sql: string, params: unknown[]) =>
  (await t.service.db.query<{ n: number }>(sql, params)).rows[0]?.n ?? 0;

beforeAll(async () => {
  t = await startTestService({ db: breakable(await openTestDb()) });
});
afterAll(() => t.close());

describe("the database lost between two commits", () => {
  it("confirm: answers the payment processing (never 503), a retry replays it, reconciliation settles it", async () => {
    const { payment } = await orderWithPayment(t);
    // Step 1 commits; recording the provider's answer (step 3) fails.
    failNext.push("UPDATE payments p SET");
    const first = await t.call("POST", `/v1/payments/${payment.id}/confirm`, { idempotencyKey: "lost-1" });
    expect(first.status).toBe(200);
    expect(first.body.status).toBe("processing");
    // Step 1's event, whose object PostgreSQL built, is the payment as step 1 committed it.
    const processing = await t.service.db.query<{ data: unknown }>(
      "SELECT data FROM outbox WHERE subject = $1 AND type = 'io.payment-service.payment.processing'",
      [payment.id],
    );
    expect(processing.rows.map((row) => row.data)).toEqual([first.body]);
    const retry = await t.call("POST", `/v1/payments/${payment.id}/confirm`, { idempotencyKey: "lost-1" });
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(retry.body).toEqual(first.body);

    await reconcile(t.service, { olderThanSeconds: 0 });
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("succeeded");
    expect(
      await count("SELECT count(*)::int AS n FROM sandbox_charges WHERE payment_id = $1", [payment.id]),
    ).toBe(1);
    expect(await checkInvariants(t.service.db, { allowProcessing: false })).toEqual([]);
  });

  it("confirm refused by the provider: a lost revert leaves it processing (not 503) until reconciliation", async () => {
    const { payment } = await orderWithPayment(t, { payment_method: "pm_card_providerError" });
    failNext.push("UPDATE payments p SET");
    const first = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
    expect(first.status).toBe(200);
    expect(first.body.status).toBe("processing");
    // The sandbox refuses this card for good: asked by reconciliation, it says so, and the payment fails.
    await reconcile(t.service, { olderThanSeconds: 0 });
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toMatchObject({
      status: "failed",
      failure: { code: "provider_error" },
    });
    expect(await checkInvariants(t.service.db, { allowProcessing: false })).toEqual([]);
  });

  it("refund: answers it pending (never 503); a retry under the same key does not refund twice", async () => {
    const { payment } = await orderWithPayment(t, { amount: 3_000 });
    await t.call("POST", `/v1/payments/${payment.id}/confirm`);
    // The reservation commits, the provider refunds, recording the refund fails.
    failNext.push("UPDATE refunds SET status");
    const body = { payment_id: payment.id, amount: 1_000 };
    const first = await t.call("POST", "/v1/refunds", { body, idempotencyKey: "refund-lost" });
    expect(first.status).toBe(201);
    expect(first.body.status).toBe("pending");
    const retry = await t.call("POST", "/v1/refunds", { body, idempotencyKey: "refund-lost" });
    expect(retry.body.id).toBe(first.body.id);
    expect(await count("SELECT count(*)::int AS n FROM refunds WHERE payment_id = $1", [payment.id])).toBe(1);

    await reconcile(t.service, { olderThanSeconds: 0 });
    expect((await t.call("GET", `/v1/refunds/${first.body.id}`)).body.status).toBe("succeeded");
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.amount_refunded).toBe(1_000);
    expect(await checkInvariants(t.service.db, { allowPendingRefunds: false })).toEqual([]);
  });

  it("any POST: a change committed before its key's result could be stored is answered, not 503", async () => {
    // A cancel's answer is stored after its change, by a statement of its own: here that statement is lost.
    const { payment } = await orderWithPayment(t);
    failNext.push("UPDATE idempotency_keys SET response_status");
    const res = await t.call("POST", `/v1/payments/${payment.id}/cancel`, { idempotencyKey: "stored-lost" });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("canceled");
    // The key stays in flight until its lease ends: a retry meanwhile is told to wait, not run again.
    const retry = await t.call("POST", `/v1/payments/${payment.id}/cancel`, {
      idempotencyKey: "stored-lost",
    });
    expect(retry.status).toBe(409);
    expect(retry.body.code).toBe("idempotency_key_in_use");
  });
});

describe("answers stored by the change itself", () => {
  // A create's answer is its new object and a confirm's is the settled payment: the statement that commits the
  // change also writes the answer into the key's record, so no later write can be lost and a retry replays at once.
  it.each([
    [
      "create order",
      async () => ({ path: "/v1/orders", body: { amount: 5_151, currency: "USD" }, status: 201 }),
    ],
    [
      "create payment",
      async () => {
        const order = await t.call("POST", "/v1/orders", { body: { amount: 5_252, currency: "USD" } });
        return {
          path: "/v1/payments",
          // Metadata keys JavaScript orders its own way (integer-like first) and keys beyond ASCII.
          body: {
            order_id: order.body.id,
            payment_method: "pm_card_visa",
            description: 'Ünïcode "quoted" \\ description',
            return_url: "https://shop.example/return?a=1&b=2",
            metadata: { b: "1", "10": "x", é: "y", "2": "z" },
          },
          status: 201,
        };
      },
    ],
    [
      "confirm",
      async () => {
        const { payment } = await orderWithPayment(t);
        return { path: `/v1/payments/${payment.id}/confirm`, body: undefined, status: 200 };
      },
    ],
    [
      "capture",
      async () => {
        const { payment } = await orderWithPayment(t, { capture_method: "manual" });
        await t.call("POST", `/v1/payments/${payment.id}/confirm`);
        return { path: `/v1/payments/${payment.id}/capture`, body: { amount: 1_000 }, status: 200 };
      },
    ],
  ])(
    "%s: one statement writes the change and its answer; a retry replays the same bytes",
    async (name, setUp) => {
      const { path, body, status } = await setUp();
      const key = `answer-${name.replace(" ", "-")}`;
      statements.length = 0;
      const first = await t.call("POST", path, { body, idempotencyKey: key });
      expect(first.status).toBe(status);
      expect(statements.filter((sql) => sql.includes("SET response_status"))).toEqual([]);
      const stored = await t.service.db.query<{ response_status: number; response_body: string }>(
        "SELECT response_status, response_body FROM idempotency_keys WHERE key = $1",
        [key],
      );
      expect(stored.rows[0]?.response_status).toBe(status);
      expect(JSON.parse(stored.rows[0]?.response_body ?? "null")).toEqual(first.body);
      const retry = await t.call("POST", path, { body, idempotencyKey: key });
      expect(retry.status).toBe(status);
      expect(retry.headers.get("idempotent-replayed")).toBe("true");
      expect(retry.text).toBe(first.text);
    },
  );
});

describe("a request that committed but never stored its key's result", () => {
  // The Idempotency-Key result is written after the change commits, by another statement. When the process dies in
  // between (or the database goes away, as here), the key stays in flight; once its lease ends (60 s), a retry takes
  // the key over. The change itself wrote the id of what it created into the key's record (its recovery point), so
  // the retry answers with that object instead of running again.
  it("a refund retried under its key after the lease ended is not made twice", async () => {
    const { payment } = await orderWithPayment(t, { amount: 3_000 });
    await t.call("POST", `/v1/payments/${payment.id}/confirm`);
    failNext.push("UPDATE idempotency_keys SET response_status");
    const body = { payment_id: payment.id, amount: 700 };
    const first = await t.call("POST", "/v1/refunds", { body, idempotencyKey: "refund-after-lease" });
    expect(first.status).toBe(201);
    await t.service.db.query(
      "UPDATE idempotency_keys SET locked_until = now() - interval '1 second' WHERE key = 'refund-after-lease'",
    );
    const retry = await t.call("POST", "/v1/refunds", { body, idempotencyKey: "refund-after-lease" });
    expect(retry.status).toBe(201);
    expect(retry.body.id).toBe(first.body.id);
    const refunds = await t.service.db.query("SELECT id FROM refunds WHERE payment_id = $1", [payment.id]);
    expect(refunds.rowCount).toBe(1);
  });
});

describe("a provider retry refused after an attempt that may have charged", () => {
  it("leaves the payment processing (not back to confirmable), so it is never charged twice", async () => {
    const { config, service } = t;
    const sandbox = sandboxProvider({
      db: service.db,
      latencyMs: 0,
      publicBaseUrl: config.publicBaseUrl,
      webhookSecret: config.providers.sandbox.webhookSecret,
      asyncDelayMs: 3_600_000,
    });
    let calls = 0;
    // First attempt: charged, answer lost (a 500). The retry under the same key: 429, "nothing done" — true of the
    // retry only.
    const flaky: PaymentProvider = {
      ...sandbox,
      async authorize(payment, key) {
        calls++;
        if (calls === 1) {
          await sandbox.authorize(payment, key);
          throw new ProviderError("sandbox", "500 after charging", false);
        }
        throw new ProviderError("sandbox", "429 rate limited", true);
      },
    };
    const original = service.providers;
    service.providers = createProviders(config, service.db, {
      extra: [flaky],
      resilience: { retries: 1, retryInitialDelayMs: 1, retryMaxDelayMs: 2 },
    });
    try {
      const { payment } = await orderWithPayment(t);
      const first = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
      expect(first.status).toBe(200);
      expect(first.body.status).toBe("processing");
      // Had it gone back to requires_confirmation, this would charge again under a new attempt's key.
      const again = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
      expect(again.status).toBe(409);
      service.providers = original;
      await reconcile(t.service, { olderThanSeconds: 0 });
      expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("succeeded");
      expect(await checkInvariants(t.service.db, { allowProcessing: false })).toEqual([]);
    } finally {
      service.providers = original;
    }
  });
});
