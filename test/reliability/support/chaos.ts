import type { Db } from "../../../lib/db/db.ts";
import { mintToken } from "../../../lib/runtime/dev-token.ts";
import type { Answer } from "./documented.ts";
import type { Send } from "./load.ts";

export const CHAOS_JWT_SECRET = "reliability-secret-that-is-long-enough-0123456789";

/**
 * The environment of a service process under chaos: a real database, events to a local sink, the sandbox calling
 * back on the service's own port, reconciliation after one second, no rate limit in the way of the load.
 */
export function childServiceEnv(options: {
  port: number;
  databaseUrl: string;
  sink: string;
  extra?: Record<string, string>;
}): Record<string, string> {
  return {
    NODE_ENV: "test",
    LOG_LEVEL: "error",
    JWT_SECRET: CHAOS_JWT_SECRET,
    DATABASE_URL: options.databaseUrl,
    DB_POOL_MAX: "8",
    K_SINK: options.sink,
    OUTBOX_POLL_INTERVAL_MS: "250",
    RECONCILE_AFTER_SECONDS: "1",
    PUBLIC_BASE_URL: `http://127.0.0.1:${options.port}`,
    SANDBOX_ASYNC_DELAY_MS: "300",
    PROVIDER_RETRIES: "1",
    RATE_LIMIT_RPS: "100000",
    RATE_LIMIT_BURST: "200000",
    ...options.extra,
  };
}

/** Requests over HTTP with a token per merchant; rejects when there is no answer (the process is gone). */
export function httpSend(baseUrl: string, secret: string, timeoutMs = 15_000): Send {
  const key = new TextEncoder().encode(secret);
  const tokens = new Map<string, Promise<string>>();
  return async (method, path, { body, merchant, idempotencyKey }) => {
    let token = tokens.get(merchant);
    if (!token) {
      token = mintToken(key, merchant);
      tokens.set(merchant, token);
    }
    const headers: Record<string, string> = { Authorization: `Bearer ${await token}` };
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {}
    return { status: res.status, headers: res.headers, body: parsed } satisfies Answer;
  };
}

/**
 * Runs reconciliation passes until no payment is processing and no refund pending, or the deadline passes (an
 * asynchronous payment settles at the sandbox only after its delay; a pass before that leaves it alone).
 */
export async function settleEverything(
  db: Db,
  pass: () => Promise<unknown>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await pass();
    const { rows } = await db.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM payments WHERE status = 'processing')
            + (SELECT count(*) FROM refunds WHERE status = 'pending') AS n`,
    );
    if (Number(rows[0]?.n) === 0 || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
