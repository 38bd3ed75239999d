import type { DbDriver } from "../config/index.ts";

export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<T>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/** The one database interface every backend implements; verbs only ever see this. */
export interface Db extends Queryable {
  readonly driver: DbDriver;
  /** Runs fn in a transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** SQLSTATE codes the domain reacts to. */
export const PG_UNIQUE_VIOLATION = "23505";
export const PG_CHECK_VIOLATION = "23514";

export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Errors that mean "the database is not reachable right now", as opposed to a bad statement. */
export function isUnavailable(error: unknown): boolean {
  const code = sqlState(error);
  if (code && /^(08|57P0|53)/.test(code)) return true; // connection exception, admin shutdown, insufficient resources
  if (code === "57014") return true; // statement timeout / query canceled
  // A deadlock victim or a serialization failure rolled back entirely: transient, safe to retry.
  if (code === "40P01" || code === "40001") return true;
  if (isStalePlan(error)) return true;
  // The Neon driver rejects with the WebSocket's ErrorEvent, not an Error: read any message it carries.
  const message = (error as { message?: unknown } | null)?.message;
  return (
    typeof message === "string" &&
    /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|timeout|Connection terminated|Client has encountered a connection error|not queryable|closed|Unexpected server response: 5\d\d|attempts to open a WebSocket/i.test(
      message,
    )
  );
}

/**
 * A named statement whose result columns changed under it (a migration dropped, renamed or retyped a column it
 * reads; statements name their columns, so an added one changes none): PostgreSQL refuses to run it again on that
 * connection. Nothing ran, and the connection must be dropped;
 * the same statement succeeds on a fresh one.
 */
export function isStalePlan(error: unknown): boolean {
  // By the server function that raises it, not by its message, which follows the server's lc_messages.
  return sqlState(error) === "0A000" && (error as { routine?: unknown }).routine === "RevalidateCachedQuery";
}
