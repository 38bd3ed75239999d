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

describe("pruneExpired", () => {
  it("deletes sent events past their retention and expired keys, nothing else", async () => {
    await event("evt_sent_long_ago", 200);
    await event("evt_sent_recently", 2);
    await event("evt_never_sent", null);
    await idempotencyKey("expired", -1);
    await idempotencyKey("live", 1);

    expect(await pruneExpired(db, { outboxRetentionHours: 168 })).toEqual({ outbox: 1, idempotency_keys: 1 });

    const events = await db.query<{ id: string }>(
      "SELECT id FROM outbox WHERE merchant_id = 'acct_retention' ORDER BY id",
    );
    expect(events.rows.map((r) => r.id)).toEqual(["evt_never_sent", "evt_sent_recently"]);
    const keys = await db.query<{ key: string }>(
      "SELECT key FROM idempotency_keys WHERE merchant_id = 'acct_retention'",
    );
    expect(keys.rows.map((r) => r.key)).toEqual(["live"]);
    // Nothing left to do on a second run.
    expect(await pruneExpired(db, { outboxRetentionHours: 168 })).toEqual({ outbox: 0, idempotency_keys: 0 });
  });
});
