import { readdirSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config/index.ts";
import { openDb } from "../../lib/db/index.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { openNeon } from "../../lib/db/neon.ts";
import { startWsProxy } from "../../scripts/ws-proxy.ts";
import {
  hostPort,
  openBackendDb,
  postgresSkipReason,
  serverBackends,
  TEST_DATABASE_URL,
} from "../support/backends.ts";

const skip = await postgresSkipReason();
if (skip) process.stderr.write(`test/dataplane/postgres: ${skip}\n`);

const MIGRATIONS = readdirSync(new URL("../../lib/db/migrations/", import.meta.url)).filter((f) =>
  /^\d+_.*\.sql$/.test(f),
);

describe.skipIf(skip).each(serverBackends())("PostgreSQL through the %s driver", (driver) => {
  it("migrates into a schema of its own, functions and triggers included", async () => {
    const db = await openBackendDb(driver);
    try {
      const { rows } = await db.query<{ path: string; tables: number; functions: number }>(
        `SELECT current_setting('search_path') AS path,
                (SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ('orders', 'payments'))::int AS tables,
                (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE n.nspname = $1 AND p.proname = 'payments_check_transition')::int AS functions`,
        [db.schema],
      );
      expect(rows[0]).toEqual({ path: db.schema, tables: 2, functions: 1 });
      // The server-side limits are in force on the driver's connections (set on connect, see sessionSetup).
      const limits = await db.transaction((tx) =>
        tx.query<{ statement: string; idle: string }>(
          "SELECT current_setting('statement_timeout') AS statement, current_setting('idle_in_transaction_session_timeout') AS idle",
        ),
      );
      expect(limits.rows[0]).toEqual({ statement: "5s", idle: "10s" });
      // The append-only trigger works from inside the schema.
      await db.query(
        "INSERT INTO audit_log (actor_type, actor_id, action, object_type, object_id) VALUES ('system', 't', 'a', 'order', 'o')",
      );
      await expect(db.query("UPDATE audit_log SET action = 'b'")).rejects.toThrow(/append-only/);
      // int8 comes back as a number, as on the other backends.
      const big = await db.query<{ n: unknown }>("SELECT 99999999999::bigint AS n");
      expect(big.rows[0]?.n).toBe(99_999_999_999);
    } finally {
      await db.close();
    }
  });

  it("applies each migration once when two instances start at the same moment", async () => {
    const first = await openBackendDb(driver, { migrate: false });
    const second = await openDb(first.config);
    try {
      const results = await Promise.all([migrate(first), migrate(second)]);
      expect(results.map((applied) => applied.length).sort()).toEqual([0, MIGRATIONS.length]);
      const { rows } = await first.query<{ version: string }>(
        "SELECT version FROM schema_migrations ORDER BY 1",
      );
      expect(rows.map((r) => r.version)).toEqual([...MIGRATIONS].sort());
      expect(await migrate(second)).toEqual([]);
    } finally {
      await second.close();
      await first.close();
    }
  });

  it("rolls back a transaction whose connection is terminated, leaving nothing half-written", async () => {
    const db = await openBackendDb(driver);
    const admin = await openDb(db.config);
    try {
      const failed = db.transaction(async (tx) => {
        await tx.query(
          "INSERT INTO orders (id, merchant_id, amount, currency) VALUES ('ord_killed', 'acct_x', 100, 'USD')",
        );
        const { rows } = await tx.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
        await admin.query("SELECT pg_terminate_backend($1)", [rows[0]?.pid]);
        await tx.query(
          "INSERT INTO audit_log (actor_type, actor_id, action, object_type, object_id) VALUES ('system', 't', 'a', 'order', 'ord_killed')",
        );
      });
      await expect(failed).rejects.toSatisfy((error: unknown) => error !== undefined);
      const { rows } = await admin.query<{ n: number }>(
        "SELECT (SELECT count(*) FROM orders WHERE id = 'ord_killed')::int + (SELECT count(*) FROM audit_log)::int AS n",
      );
      expect(rows[0]?.n).toBe(0);
      // The pool dropped the dead connection and serves the next transaction on a new one.
      await db.transaction((tx) => tx.query("SELECT 1"));
    } finally {
      await admin.close();
      await db.close();
    }
  });
});

describe.skipIf(skip)("the WebSocket proxy for the Neon driver", () => {
  const proxies: { close: () => Promise<void> }[] = [];
  afterAll(async () => {
    for (const proxy of proxies) await proxy.close();
  });

  it("connects only to allow-listed addresses", async () => {
    const proxy = await startWsProxy({ allow: ["127.0.0.1:1"] });
    proxies.push(proxy);
    const db = openNeon(
      loadConfig({
        NODE_ENV: "test",
        DATABASE_URL: TEST_DATABASE_URL,
        DB_DRIVER: "neon",
        NEON_WS_PROXY: proxy.url,
      }).db,
    );
    await expect(db.query("SELECT 1")).rejects.toMatchObject({ message: expect.stringMatching(/403/) });
    await db.close();
    expect(proxy.connections()).toBe(0);
  });

  it("carries queries and transactions, and closes the TCP side with the socket", async () => {
    const { host, port } = hostPort(TEST_DATABASE_URL);
    const proxy = await startWsProxy({ allow: [`${host}:${port}`] });
    proxies.push(proxy);
    const db = openNeon(
      loadConfig({
        NODE_ENV: "test",
        DATABASE_URL: TEST_DATABASE_URL,
        DB_DRIVER: "neon",
        NEON_WS_PROXY: proxy.url,
      }).db,
    );
    const sum = await db.transaction(async (tx) => {
      const a = await tx.query<{ n: number }>("SELECT $1::int AS n", [20]);
      const b = await tx.query<{ n: number }>("SELECT $1::int AS n", [22]);
      return (a.rows[0]?.n ?? 0) + (b.rows[0]?.n ?? 0);
    });
    expect(sum).toBe(42);
    expect(proxy.connections()).toBeGreaterThan(0);
    await db.close();
    await expect.poll(() => proxy.connections()).toBe(0);
  });
});
