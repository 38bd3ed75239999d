import pg from "pg";
import type { DbConfig } from "../config/index.ts";
import type { Db, Queryable, QueryResult } from "./db.ts";

// int8 as a JS number: amounts are bounded to 99 999 999 999, far inside Number.MAX_SAFE_INTEGER.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

type PoolLike = Pick<pg.Pool, "query" | "connect" | "end">;

/** node-postgres over TCP, and (through the same Pool API) the Neon serverless driver. */
export function poolDb(pool: PoolLike, driver: Db["driver"]): Db {
  const run = async <T>(q: Pick<pg.ClientBase, "query">, sql: string, params?: unknown[]) => {
    const result = await q.query(sql, params);
    return { rows: result.rows as T[], rowCount: result.rowCount ?? 0 } satisfies QueryResult<T>;
  };
  return {
    driver,
    query: (sql, params) => run(pool, sql, params),
    exec: async (sql) => {
      await pool.query(sql);
    },
    async transaction(fn) {
      const client = await pool.connect();
      let broken = false;
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
        try {
          await client.query("ROLLBACK");
        } catch {
          broken = true; // the connection died mid-transaction: PostgreSQL rolled it back; drop the client
        }
        throw error;
      } finally {
        client.release(broken);
      }
    },
    ping: async () => {
      await pool.query("SELECT 1");
    },
    close: () => pool.end(),
  };
}

export function poolOptions(config: DbConfig): pg.PoolConfig {
  return {
    connectionString: config.url,
    max: config.poolMax,
    connectionTimeoutMillis: config.connectTimeoutMs,
    statement_timeout: config.statementTimeoutMs,
    // A client-side bound too: a dead server must not hold a request past the statement timeout.
    query_timeout: config.statementTimeoutMs + 1_000,
    idleTimeoutMillis: 30_000,
    ssl: config.ssl ? { rejectUnauthorized: true } : undefined,
    application_name: "payment-service",
    options: config.schema ? `-c search_path=${config.schema}` : undefined,
  };
}

export function openPg(config: DbConfig): Db {
  const pool = new pg.Pool(poolOptions(config));
  // An idle client's error (server restart) must not crash the process; the pool replaces the client.
  pool.on("error", () => {});
  return poolDb(pool, "pg");
}
