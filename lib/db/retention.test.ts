import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestDb } from "../../test/support/harness.ts";
import type { Db } from "./db.ts";
import { pruneExpired } from "./retention.ts";

let db: Db;
beforeAll(async () => {
  db = await openTestDb();
});
afterAll(() => db.close());

/** An event created 400 hours ago and sent `sentHoursAgo` hours ago (null: never; the interval is then null too). */
async function event(id: string, sentHoursAgo: number | null) {
  await db.query(
    `INSERT INTO outbox (id, type, source, subject, partition_key, merchant_id, data, created_at, sent_at)
     VALUES ($1, 'io.payment-service.order.created', '/test', $1, $1, 'acct_retention', '{}',
             now() - interval '400 hours', now() - make_interval(hours => $2))`,
    [id, sentHoursAgo],
  );
}

async function idempotencyKey(key: string, expiresInHours: number) {
  await db.query(
    `INSERT INTO idempotency_keys (merchant_id, key, request_hash, response_status, response_body, expires_at)
     VALUES ('acct_retention', $1, 'hash', 201, '{}', now() + make_interval(hours => $2))`,
    [key, expiresInHours],
  );
}

const RETENTION = { outboxHours: 168, providerEventDays: 90 };

/** A provider notification received 200 days ago, decided `decidedDaysAgo` days ago (null: still pending). */
async function notification(
  eventId: string,
  status: "pending" | "applied" | "ignored",
  decidedDaysAgo: number | null,
  paymentId: string | null = null,
) {
  await db.query(
    `INSERT INTO provider_events (provider, event_id, type, payment_id, occurred_at, notification, status, reason,
                                  received_at, last_received_at, decided_at)
     VALUES ('sandbox', $1, 'payment.succeeded', $4, now() - interval '200 days', '{}', $2,
             CASE WHEN $2 = 'ignored' THEN 'stale' END, now() - interval '200 days', now() - interval '200 days',
             now() - make_interval(days => $3))`,
    [eventId, status, decidedDaysAgo, paymentId],
  );
}

/** A payment still waiting for its confirmation: it can move, so its notifications must stay. */
async function openPayment(id: string) {
  await db.query(
    "INSERT INTO orders (id, merchant_id, amount, currency) VALUES ($1, 'acct_retention', 100, 'USD')",
    [`ord_${id}`],
  );
  await db.query(
    `INSERT INTO payments (id, merchant_id, order_id, amount, currency, provider, payment_method)
     VALUES ($1, 'acct_retention', $2, 100, 'USD', 'sandbox', 'pm_card_visa')`,
    [id, `ord_${id}`],
  );
}

describe("pruneExpired", () => {
  it("deletes sent events and decided notifications past their retention and expired keys, nothing else", async () => {
    await notification("evt_retention_applied_long_ago", "applied", 100);
    await notification("evt_retention_ignored_long_ago", "ignored", 95);
    await notification("evt_retention_applied_recently", "applied", 30);
    await notification("evt_retention_pending", "pending", null);
    await openPayment("pay_retention_open");
    await notification("evt_retention_of_open_payment", "applied", 100, "pay_retention_open");
    await event("evt_sent_long_ago", 200);
    await event("evt_sent_recently", 2);
    await event("evt_never_sent", null);
    await idempotencyKey("expired", -1);
    await idempotencyKey("live", 1);

    expect(await pruneExpired(db, RETENTION)).toEqual({ outbox: 1, idempotency_keys: 1, provider_events: 2 });

    const events = await db.query<{ id: string }>(
      "SELECT id FROM outbox WHERE merchant_id = 'acct_retention' ORDER BY id",
    );
    expect(events.rows.map((r) => r.id)).toEqual(["evt_never_sent", "evt_sent_recently"]);
    const keys = await db.query<{ key: string }>(
      "SELECT key FROM idempotency_keys WHERE merchant_id = 'acct_retention'",
    );
    expect(keys.rows.map((r) => r.key)).toEqual(["live"]);
    const notifications = await db.query<{ event_id: string }>(
      "SELECT event_id FROM provider_events WHERE event_id LIKE 'evt_retention_%' ORDER BY event_id",
    );
    expect(notifications.rows.map((r) => r.event_id)).toEqual([
      "evt_retention_applied_recently",
      "evt_retention_of_open_payment",
      "evt_retention_pending",
    ]);
    // Nothing left to do on a second run.
    expect(await pruneExpired(db, RETENTION)).toEqual({ outbox: 0, idempotency_keys: 0, provider_events: 0 });
  });
});
