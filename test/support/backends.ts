import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { beforeEach } from "vitest";
import type { Cache } from "../../lib/cache/cache.ts";
import { openCache } from "../../lib/cache/index.ts";
import type { Env } from "../../lib/config/env.ts";
import { type DbConfig, loadConfig } from "../../lib/config/index.ts";
import type { Db } from "../../lib/db/db.ts";
import { openDb } from "../../lib/db/index.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { openPg } from "../../lib/db/pg.ts";
import { startWsProxy } from "../../scripts/ws-proxy.ts";

/**
 * Which database the API tests run on: TEST_DB_BACKEND=pglite (default, embedded), pg (node-postgres over TCP)
 * or neon (the Neon driver through a local WebSocket proxy), against TEST_DATABASE_URL (default: the local
 * PostgreSQL's `test` database). REDIS_URL, when set, puts the cache, locks and rate limits on that Redis.
 */
export type TestBackend = "pglite" | "pg" | "neon";
export type ServerBackend = Exclude<TestBackend, "pglite">;

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export function testBackend(): TestBackend {
  const value = process.env.TEST_DB_BACKEND ?? "pglite";
  if (value !== "pglite" && value !== "pg" && value !== "neon") {
    throw new Error(`TEST_DB_BACKEND must be pglite, pg or neon, not ${JSON.stringify(value)}`);
  }
  return value;
}

/** The drivers a suite about the real servers covers: the chosen one, or both when the run is on PGlite. */
export function serverBackends(): ServerBackend[] {
  const backend = testBackend();
  return backend === "pglite" ? ["pg", "neon"] : [backend];
}

export function hostPort(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname || "127.0.0.1", port: Number(parsed.port || 5432) };
}

/** Whether a TCP connection to the URL's host and port opens within the timeout. */
export function reachable(url: string, timeoutMs = 1_000): Promise<boolean> {
  const { host, port } = hostPort(url);
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true)).once("error", () => done(false));
  });
}

/** Why the suites needing PostgreSQL cannot run here, or undefined when they can. */
export async function postgresSkipReason(): Promise<string | undefined> {
  if (await reachable(TEST_DATABASE_URL)) return undefined;
  const { host, port } = hostPort(TEST_DATABASE_URL);
  return `PostgreSQL is not reachable at ${host}:${port} (TEST_DATABASE_URL): skipped`;
}

export const TEST_REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

export async function redisSkipReason(): Promise<string | undefined> {
  if (await reachable(TEST_REDIS_URL)) return undefined;
  return `Redis is not reachable at ${TEST_REDIS_URL} (REDIS_URL): skipped`;
}

/**
 * Registers, for the calling test file, a skip of every test when TEST_DB_BACKEND names a server that is not
 * reachable, so a machine without PostgreSQL runs the other suites and says why these did not run.
 */
export async function skipWhenBackendUnreachable(): Promise<string | undefined> {
  if (testBackend() === "pglite") return undefined;
  const reason = await postgresSkipReason();
  if (reason) {
    process.stderr.write(`TEST_DB_BACKEND=${testBackend()}: ${reason}\n`);
    beforeEach((context) => context.skip(reason));
  }
  return reason;
}

export interface BackendDb extends Db {
  /** The schema this Db works in; dropped by close(). */
  readonly schema: string;
  readonly config: DbConfig;
}

export interface BackendDbOptions {
  /** Where the Db connects (default TEST_DATABASE_URL); a test may put a proxy in between. */
  url?: string;
  /** Where the schema is created and dropped (default TEST_DATABASE_URL), never through a test's proxy. */
  adminUrl?: string;
  migrate?: boolean;
  /** Extra configuration (timeouts, pool size). */
  env?: Env;
}

/**
 * Opens a Db on the real PostgreSQL in a schema of its own (`t_<random>`, set as search_path on every
 * connection), migrated unless told otherwise; close() drops the schema. For neon, NEON_WS_PROXY is used when
 * set, else a WebSocket proxy is started in this process for the Db's lifetime.
 */
export async function openBackendDb(
  backend: ServerBackend,
  options: BackendDbOptions = {},
): Promise<BackendDb> {
  const url = options.url ?? TEST_DATABASE_URL;
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const admin = openPg(
    loadConfig({ NODE_ENV: "test", DATABASE_URL: options.adminUrl ?? TEST_DATABASE_URL }).db,
  );
  await admin.exec(`CREATE SCHEMA ${schema}`);

  const { host, port } = hostPort(url);
  const proxy =
    backend === "neon" && !process.env.NEON_WS_PROXY
      ? await startWsProxy({ allow: [`${host}:${port}`] })
      : undefined;
  const config: DbConfig = {
    ...loadConfig({
      NODE_ENV: "test",
      DATABASE_URL: url,
      DB_DRIVER: backend,
      NEON_WS_PROXY: proxy?.url ?? process.env.NEON_WS_PROXY,
      ...options.env,
    }).db,
    schema,
  };
  const db = await openDb(config);
  const close = async () => {
    await db.close().catch(() => {});
    await proxy?.close();
    await admin.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await admin.close();
  };
  try {
    if (options.migrate ?? true) await migrate(db);
  } catch (error) {
    await close();
    throw error;
  }
  return { ...db, schema, config, close };
}

/**
 * The Redis-backed cache when REDIS_URL is set and reachable, with a key prefix of its own so concurrent test
 * files and runs never see each other's keys; undefined otherwise (the service then uses its in-memory cache).
 */
export async function openTestCache(): Promise<Cache | undefined> {
  if (!process.env.REDIS_URL) return undefined;
  if (await redisSkipReason()) {
    process.stderr.write(`REDIS_URL=${process.env.REDIS_URL} is not reachable: using the in-memory cache\n`);
    return undefined;
  }
  const cache = await openCache({
    redisUrl: process.env.REDIS_URL,
    redisKeyPrefix: `test:${randomBytes(6).toString("hex")}:`,
  });
  await waitForCache(cache);
  return cache;
}

/** Redis connects in the background; tests that count cache hits wait for it first. */
export async function waitForCache(cache: Cache, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await cache.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}
