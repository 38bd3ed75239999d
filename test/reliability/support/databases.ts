import { randomBytes } from "node:crypto";
import pg from "pg";
import type { Env } from "../../../lib/config/env.ts";
import { type DbConfig, loadConfig } from "../../../lib/config/index.ts";
import type { Db } from "../../../lib/db/db.ts";
import { migrate } from "../../../lib/db/migrate.ts";
import { openPg, poolDb } from "../../../lib/db/pg.ts";
import { TEST_DATABASE_URL } from "../../support/backends.ts";

/**
 * A database of its own on the machine's PostgreSQL, for tests that need more than a schema: a service in a child
 * process (configured by URL alone), or killing the service's connections by database name without touching any
 * other suite's. Dropped (WITH FORCE) on close.
 */
export interface OwnDatabase {
  readonly name: string;
  /** postgres://…/<name> on the real server. */
  readonly url: string;
  /** A connection of the test's own (never through a test's proxy), for checks and for killing the service's. */
  readonly admin: Db;
  /** pg_terminate_backend on every connection the service holds to this database; returns how many. */
  terminateServiceConnections(): Promise<number>;
  close(): Promise<void>;
}

export function urlFor(database: string, base = TEST_DATABASE_URL): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

export function pgConfig(url: string, env: Env = {}): DbConfig {
  return loadConfig({ NODE_ENV: "test", DATABASE_URL: url, ...env }).db;
}

/** A small pool under a name of its own, so killing the service's connections (by name) never kills it. */
export function testConnection(url: string): Db {
  const pool = new pg.Pool({ connectionString: url, max: 2, application_name: "reliability-test" });
  pool.on("error", () => {});
  return poolDb(pool, "pg", false);
}

export async function createDatabase(
  prefix = "rel",
  options: { migrate?: boolean } = {},
): Promise<OwnDatabase> {
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  const server = openPg({ ...pgConfig(TEST_DATABASE_URL), poolMax: 1 });
  try {
    await server.exec(`CREATE DATABASE ${name}`);
  } finally {
    await server.close();
  }
  const url = urlFor(name);
  const admin = testConnection(url);
  if (options.migrate ?? true) await migrate(admin);
  return {
    name,
    url,
    admin,
    async terminateServiceConnections() {
      // The service names its connections (lib/db/pg.ts); the test's are named otherwise.
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
         WHERE datname = $1 AND application_name = 'payment-service'`,
        [name],
      );
      return rows[0]?.n ?? 0;
    },
    async close() {
      await admin.close().catch(() => {});
      const dropper = openPg({ ...pgConfig(TEST_DATABASE_URL), poolMax: 1 });
      try {
        await dropper.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await dropper.close();
      }
    },
  };
}
