import { PGlite, types } from "@electric-sql/pglite";
import type { Db, Queryable, QueryResult } from "./db.ts";

// int8 as a JS number: amounts are bounded to 99 999 999 999, far inside Number.MAX_SAFE_INTEGER.
const parsers = { [types.INT8]: (value: string) => Number(value) };

/** Embedded PostgreSQL (WASM). One connection; PGlite queues concurrent work, transactions included. */
export type PgliteDb = Db & { readonly raw: PGlite };

export async function openPglite(dataDir?: string, loadDataDir?: Blob): Promise<PgliteDb> {
  const pg = await PGlite.create({ dataDir, parsers, loadDataDir });
  const query = async <T>(
    q: Pick<PGlite, "query">,
    sql: string,
    params?: unknown[],
  ): Promise<QueryResult<T>> => {
    const result = await q.query<T>(sql, params as unknown[]);
    // PGlite reports affectedRows 0 for SELECT; node-postgres counts returned rows there.
    return { rows: result.rows, rowCount: Math.max(result.affectedRows ?? 0, result.rows.length) };
  };
  return {
    driver: "pglite",
    raw: pg,
    query: (sql, params) => query(pg, sql, params),
    exec: async (sql) => {
      await pg.exec(sql);
    },
    transaction: (fn) =>
      pg.transaction((tx) =>
        fn({
          query: (sql, params) => query(tx, sql, params),
          exec: async (sql) => {
            await tx.exec(sql);
          },
        } satisfies Queryable),
      ),
    ping: async () => {
      await pg.query("SELECT 1");
    },
    close: () => pg.close(),
  };
}

/** A snapshot of a database's files; tests open copies of one migrated database instead of running initdb again. */
export function dumpPglite(db: PgliteDb): Promise<Blob> {
  return db.raw.dumpDataDir("none") as Promise<Blob>;
}
