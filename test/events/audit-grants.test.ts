import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqlState } from "../../lib/db/db.ts";
import { type BackendDb, openBackendDb, postgresSkipReason } from "../support/backends.ts";

const skip = await postgresSkipReason();

let db: BackendDb;
beforeAll(async () => {
  if (!skip) db = await openBackendDb("pg"); // a migrated schema of its own, dropped afterwards
});
afterAll(async () => {
  if (!skip) await db.close();
});

/** Runs statements as the service's role; SET LOCAL ends with the transaction. */
function asService<T>(
  fn: (q: (sql: string, params?: unknown[]) => Promise<{ rows: unknown[] }>) => Promise<T>,
) {
  return db.transaction(async (tx) => {
    await tx.query("SET LOCAL ROLE payment_service");
    return fn((sql, params) => tx.query(sql, params));
  });
}

async function failure(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return { code: sqlState(error), message: (error as Error).message };
  }
  throw new Error("expected the statement to fail");
}

describe.skipIf(skip)("the payment_service role on PostgreSQL", () => {
  it("may append to and read the audit trail", async () => {
    const rows = await asService(async (q) => {
      await q(
        `INSERT INTO audit_log (actor_type, actor_id, action, object_type, object_id, status_before, status_after)
         VALUES ('system', 'test', 'payment.test', 'payment', 'pay_grants', 'processing', 'succeeded')`,
      );
      return (await q("SELECT action FROM audit_log WHERE object_id = 'pay_grants'")).rows;
    });
    expect(rows).toEqual([{ action: "payment.test" }]);
  });

  it.each([
    ["UPDATE", "UPDATE audit_log SET action = 'rewritten'"],
    ["DELETE", "DELETE FROM audit_log"],
    ["TRUNCATE", "TRUNCATE audit_log"],
  ])("may not %s it: the privilege is missing, before any trigger runs", async (_, sql) => {
    const error = await failure(asService((q) => q(sql)));
    expect(error.code).toBe("42501");
    expect(error.message).toBe("permission denied for table audit_log");
  });

  it("has what the service needs on the other tables, and no more", async () => {
    await asService(async (q) => {
      await q("SELECT count(*) FROM payments");
      await q("UPDATE outbox SET attempts = attempts WHERE false");
      await q("UPDATE provider_events SET deliveries = deliveries WHERE false");
      await q("DELETE FROM idempotency_keys WHERE false");
      await q("DELETE FROM outbox WHERE false");
      await q("DELETE FROM provider_events WHERE false");
      await q("SELECT nextval('outbox_seq_seq')");
    });
    const error = await failure(asService((q) => q("DELETE FROM payments WHERE false")));
    expect(error.message).toBe("permission denied for table payments");
  });

  it("stops even the table owner from truncating the trail", async () => {
    const error = await failure(db.transaction((tx) => tx.query("TRUNCATE audit_log")));
    expect(error.message).toContain("append-only");
  });
});
