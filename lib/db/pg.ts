import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import pg from "pg";
import type { DbConfig, DbTls } from "../config/index.ts";
import { type Db, isStalePlan, isUnavailable, type Queryable, type QueryResult } from "./db.ts";
import { StatementNames } from "./statement-names.ts";

// int8 as a JS number: amounts are bounded to 99 999 999 999, far inside Number.MAX_SAFE_INTEGER.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

type PoolLike = Pick<pg.Pool, "query" | "connect" | "end">;

/**
 * node-postgres over TCP, and (through the same Pool API) the Neon serverless driver. Statements with parameters
 * run as named statements when `prepared` is set (see StatementNames); a pooler that does not keep them per client
 * (PgBouncer in transaction mode before 1.21, or with max_prepared_statements = 0) needs it off.
 */
export function poolDb(pool: PoolLike, driver: Db["driver"], prepared: boolean): Db {
  const names = prepared ? new StatementNames() : undefined;
  const run = async <T>(q: Pick<pg.ClientBase, "query">, sql: string, params?: unknown[], named = true) => {
    const name = named && params?.length ? names?.nameOf(sql) : undefined;
    const result = await q.query(name ? { name, text: sql, values: params } : sql, name ? undefined : params);
    return { rows: result.rows as T[], rowCount: result.rowCount ?? 0 } satisfies QueryResult<T>;
  };
  return {
    driver,
    // Outside a transaction a stale named statement is simply run again unnamed: the pool has already dropped
    // the connection it failed on, and nothing ran. Inside one, the transaction fails as unavailable (503).
    query: <T>(sql: string, params?: unknown[]) =>
      run<T>(pool, sql, params).catch((error: unknown) => {
        if (!isStalePlan(error)) throw error;
        return run<T>(pool, sql, params, false);
      }),
    exec: async (sql) => {
      await pool.query(sql);
    },
    async transaction(fn) {
      const client = await pool.connect();
      let broken = false;
      // A connection that dies between two statements (server restart, pg_terminate_backend) makes the client emit
      // "error" with no one listening, which would crash the process: the next statement fails instead.
      const onError = () => {
        broken = true;
      };
      client.on("error", onError);
      try {
        await client.query("BEGIN");
        const result = await fn({
          query: (sql, params) => run(client, sql, params),
          exec: async (sql) => {
            await client.query(sql);
          },
        } satisfies Queryable);
        await client.query("COMMIT");
        return result;
      } catch (error) {
        // A lost or timed-out connection is dropped, not rolled back: ROLLBACK would wait on the same dead socket
        // for another query timeout, and PostgreSQL rolls back the transaction of a connection that goes away.
        broken ||= isUnavailable(error);
        if (!broken) {
          try {
            await client.query("ROLLBACK");
          } catch {
            broken = true;
          }
        }
        throw error;
      } finally {
        client.off("error", onError);
        client.release(broken);
      }
    },
    ping: async () => {
      await pool.query("SELECT 1");
    },
    close: () => pool.end(),
  };
}

// TLS is configured from DbConfig.ssl alone; left in the URL, node-postgres would parse these again and replace it.
const TLS_PARAMS = ["sslmode", "sslrootcert", "sslcert", "sslkey", "uselibpqcompat"];

export function connectionString(url: string | undefined): string | undefined {
  if (!url?.includes("?")) return url;
  const [base, query = ""] = url.split("?", 2) as [string, string?];
  const params = new URLSearchParams(query);
  for (const name of TLS_PARAMS) params.delete(name);
  const rest = params.toString();
  return rest ? `${base}?${rest}` : base;
}

const pem = (value: string) => (value.includes("-----BEGIN") ? value : readFileSync(value, "utf8"));

export function tlsOptions(tls: DbTls | false): ConnectionOptions | false {
  if (!tls) return false;
  return {
    rejectUnauthorized: tls.verifyChain,
    // verify-ca: the chain must lead to the CA, the name may differ (a pooler in front of the server).
    ...(tls.verifyChain && !tls.verifyHost ? { checkServerIdentity: () => undefined } : {}),
    ...(tls.ca ? { ca: pem(tls.ca) } : {}),
    ...(tls.cert ? { cert: pem(tls.cert) } : {}),
    ...(tls.key ? { key: pem(tls.key) } : {}),
  };
}

/**
 * Defaults sized for one Knative instance (see lib/config for the numbers):
 * - `max` connections per instance, so max-scale × max stays under the server's max_connections;
 * - a short connect timeout: an unreachable database answers 503 + Retry-After within seconds, the client retries
 *   and the queue-proxy keeps the request budget, instead of requests piling up on a dead pool;
 * - statement_timeout on the server (see sessionSetup) and a query_timeout a second longer on the client, so a
 *   hung server or a silently dropped connection cannot hold a request;
 * - idle connections are closed after 30 s: an idle instance gives its connections back long before Knative
 *   scales it to zero, and a burst of new instances finds the server's slots free;
 * - connections are renewed every 5 minutes, so the pool follows a failover or a DNS change without a restart;
 * - TCP keep-alive notices a connection that a NAT or load balancer dropped silently;
 * - a transaction left idle (an instance frozen or killed mid-request) is ended by the server, freeing its locks
 *   (idle_in_transaction_session_timeout, also in sessionSetup).
 */
export function poolOptions(config: DbConfig): pg.PoolConfig {
  return {
    connectionString: connectionString(config.url),
    max: config.poolMax,
    connectionTimeoutMillis: config.connectTimeoutMs,
    query_timeout: config.statementTimeoutMs + 1_000,
    idleTimeoutMillis: 30_000,
    maxLifetimeSeconds: 300,
    keepAlive: true,
    ssl: tlsOptions(config.ssl),
    application_name: "payment-service",
    // Awaited by the pool before it hands the new connection out, so its limits and schema are always in force.
    onConnect: async (client) => {
      await client.query(sessionSetup(config));
    },
  };
}

/**
 * Server-side limits and the schema, sent as one SET statement on each new connection rather than as start-up
 * parameters: PgBouncer and Neon's pooled endpoints refuse a connection whose start-up packet carries
 * statement_timeout or options, and Neon's direct endpoints ignore them; a SET works on every PostgreSQL.
 */
export function sessionSetup(config: DbConfig): string {
  return [
    `SET statement_timeout = ${config.statementTimeoutMs}`,
    `SET idle_in_transaction_session_timeout = ${config.statementTimeoutMs * 2}`,
    ...(config.schema ? [`SET search_path TO ${config.schema}`] : []),
  ].join("; ");
}

export function openPg(config: DbConfig): Db {
  const pool = new pg.Pool(poolOptions(config));
  // An idle client's error (server restart) must not crash the process; the pool replaces the client.
  pool.on("error", () => {});
  return poolDb(pool, "pg", config.preparedStatements);
}
