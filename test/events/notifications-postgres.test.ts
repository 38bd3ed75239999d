import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db, Queryable } from "../../lib/db/db.ts";
import { type BackendDb, openBackendDb, postgresSkipReason } from "../support/backends.ts";
import { startTestService, type TestService } from "../support/harness.ts";
import {
  postSandboxWebhook,
  processingPayment,
  sandboxEventId,
  sandboxHeaders,
  sandboxNotificationBody,
  TEST_ENV,
} from "./support.ts";

const skip = await postgresSkipReason();

let base: BackendDb;
let t: TestService;
/** While set, a transaction that inserted a payment waits for this before it commits. */
let holdCommit: Promise<void> | undefined;
let onPaymentInserted: ((id: string) => void) | undefined;

/** The real PostgreSQL, with a way to hold the create transaction open at its COMMIT. */
function gated(db: BackendDb): Db {
  return {
    ...db,
    // Creating a payment is one autocommit statement; run it in a transaction held open at its COMMIT.
    query: (sql, params) =>
      sql.includes("INSERT INTO payments")
        ? (db.transaction(async (tx) => {
            const result = await tx.query(sql, params);
            onPaymentInserted?.(String(params?.[0]));
            if (holdCommit) await holdCommit;
            return result;
          }) as never)
        : db.query(sql, params),
    transaction: (fn) =>
      db.transaction(async (tx) => {
        let insertedPayment = false;
        const watched: Queryable = {
          exec: (sql) => tx.exec(sql),
          query: async (sql, params) => {
            const result = await tx.query(sql, params);
            if (sql.includes("INSERT INTO payments")) {
              insertedPayment = true;
              onPaymentInserted?.(String(params?.[0]));
            }
            return result as never;
          },
        };
        const result = await fn(watched);
        if (insertedPayment && holdCommit) await holdCommit;
        return result;
      }),
  };
}

beforeAll(async () => {
  if (skip) return;
  base = await openBackendDb("pg");
  t = await startTestService({ db: gated(base), env: TEST_ENV });
});
afterAll(async () => {
  if (!skip) await t.close();
});

describe.skipIf(skip)("provider notifications on PostgreSQL", () => {
  it("keeps a notification that lands before the create transaction commits, and applies it later", async () => {
    const order = await t.call("POST", "/v1/orders", { body: { amount: 4200, currency: "USD" } });
    let release!: () => void;
    holdCommit = new Promise<void>((resolve) => {
      release = resolve;
    });
    const inserted = new Promise<string>((resolve) => {
      onPaymentInserted = resolve;
    });
    const creating = t.call("POST", "/v1/payments", {
      body: { order_id: order.body.id, payment_method: "pm_card_providerTimeout" },
    });
    const paymentId = await inserted; // the row exists, uncommitted
    const id = sandboxEventId();
    const body = sandboxNotificationBody({ id, paymentId, type: "payment.succeeded", amount: 4200 });

    const early = await postSandboxWebhook(t, body);

    expect(early.status).toBe(503);
    expect((await base.query("SELECT status FROM provider_events WHERE event_id = $1", [id])).rows).toEqual([
      { status: "pending" },
    ]);
    holdCommit = undefined;
    onPaymentInserted = undefined;
    release();
    expect((await creating).status).toBe(201);

    // The provider retries while our payment still awaits its confirm: kept again.
    expect((await postSandboxWebhook(t, body)).status).toBe(503);
    expect((await t.call("POST", `/v1/payments/${paymentId}/confirm`)).body.status).toBe("processing");
    const drain = await t.app.request("/internal/outbox/drain", { method: "POST" });
    expect((await drain.json()).notifications.applied).toBe(1);

    expect((await t.call("GET", `/v1/payments/${paymentId}`)).body).toMatchObject({
      status: "succeeded",
      amount_captured: 4200,
    });
    const audit = await base.query(
      "SELECT actor_type, action FROM audit_log WHERE object_id = $1 ORDER BY id",
      [paymentId],
    );
    expect(audit.rows).toEqual([
      { actor_type: "merchant", action: "payment.create" },
      { actor_type: "merchant", action: "payment.confirm" },
      { actor_type: "provider", action: "payment.webhook.succeeded" },
    ]);
    // And the provider's next retry is a duplicate.
    expect((await postSandboxWebhook(t, body)).body.result).toBe("duplicate");
  });

  it("applies one of several concurrent deliveries of the same notification", async () => {
    const { payment } = await processingPayment(t);
    const body = sandboxNotificationBody({ paymentId: payment.id, type: "payment.succeeded" });
    const secret = t.config.providers.sandbox.webhookSecret;

    const answers = await Promise.all(
      Array.from({ length: 6 }, () => postSandboxWebhook(t, body, sandboxHeaders(secret, body))),
    );

    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
    expect(answers.map((a) => a.body.result).sort()).toEqual(["applied", ...Array(5).fill("duplicate")]);
    const audit = await base.query(
      "SELECT count(*)::int AS n FROM audit_log WHERE object_id = $1 AND actor_type = 'provider'",
      [payment.id],
    );
    expect(audit.rows).toEqual([{ n: 1 }]);
  });

  it("lets only one of two racing notifications of the same payment win", async () => {
    const { payment } = await processingPayment(t);
    const succeeded = sandboxNotificationBody({ paymentId: payment.id, type: "payment.succeeded" });
    const failed = sandboxNotificationBody({
      paymentId: payment.id,
      type: "payment.failed",
      failure: { code: "card_declined", message: "The card was declined." },
    });

    const [a, b] = await Promise.all([postSandboxWebhook(t, succeeded), postSandboxWebhook(t, failed)]);

    expect([a.body.result, b.body.result].sort()).toEqual(["applied", "ignored"]);
    const changes = await base.query(
      "SELECT status_after FROM audit_log WHERE object_id = $1 AND actor_type = 'provider'",
      [payment.id],
    );
    expect(changes.rows).toHaveLength(1);
  });
});
