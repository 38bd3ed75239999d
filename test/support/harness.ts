import { readFile } from "node:fs/promises";
import { inject } from "vitest";
import type { Cache } from "../../lib/cache/cache.ts";
import type { Env } from "../../lib/config/env.ts";
import { type Config, loadConfig } from "../../lib/config/index.ts";
import type { Db } from "../../lib/db/db.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { openPglite } from "../../lib/db/pglite.ts";
import type { FunctionDefinition } from "../../lib/http/route.ts";
import type { ServiceContext } from "../../lib/payments/context.ts";
import { loadApp } from "../../lib/runtime/apps.ts";
import { mintToken } from "../../lib/runtime/dev-token.ts";
import { createService } from "../../lib/runtime/service.ts";
import { openBackendDb, openTestCache, skipWhenBackendUnreachable, testBackend } from "./backends.ts";

export const TEST_SECRET = "test-secret-that-is-long-enough-0123456789";

// TEST_DB_BACKEND=pg|neon without a reachable PostgreSQL skips every test of the file, saying why.
const backendSkipped = await skipWhenBackendUnreachable();

/**
 * Opens a fresh database: on TEST_DB_BACKEND=pg|neon a migrated schema of its own on the real PostgreSQL,
 * else an embedded one from the migrated snapshot made once per run.
 */
export async function openTestDb(): Promise<Db> {
  const backend = testBackend();
  if (backend !== "pglite" && !backendSkipped) return openBackendDb(backend);
  const file = inject("pgliteSnapshot");
  if (!file) {
    const db = await openPglite();
    await migrate(db);
    return db;
  }
  const blob = new Blob([await readFile(file)]);
  return openPglite(undefined, blob);
}

export interface TestService {
  service: ServiceContext;
  config: Config;
  app: Awaited<ReturnType<typeof loadApp>>;
  /** A request with a merchant's token (both scopes unless given). */
  call: (method: string, path: string, options?: CallOptions) => Promise<TestResponse>;
  token: (merchantId?: string, scopes?: string[]) => Promise<string>;
  close: () => Promise<void>;
}

export interface CallOptions {
  body?: unknown;
  merchant?: string;
  token?: string | null;
  headers?: Record<string, string>;
  idempotencyKey?: string;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  /** The body as sent, byte for byte (replays must send the first answer's bytes). */
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON bodies
  body: any;
}

/** The whole service in-process (all functions), on the embedded backends unless a db/cache is given. */
export async function startTestService(
  options: {
    env?: Env;
    db?: Db;
    cache?: Cache;
    target?: Config["functionTarget"] | FunctionDefinition["name"];
  } = {},
): Promise<TestService> {
  const config = loadConfig({
    NODE_ENV: "test",
    JWT_SECRET: TEST_SECRET,
    RATE_LIMIT_RPS: "100000",
    RATE_LIMIT_BURST: "200000",
    ...options.env,
  });
  const db = options.db ?? (await openTestDb());
  const service = await createService(config, {
    db,
    cache: options.cache ?? (await openTestCache()),
    migrate: options.db !== undefined,
  });
  const app = await loadApp(service, options.target ?? "all");
  const secret = config.auth.secret as Uint8Array;
  const tokens = new Map<string, Promise<string>>();
  const token = (merchantId = "acct_test", scopes?: string[]) => {
    const key = `${merchantId}|${scopes?.join(" ")}`;
    let t = tokens.get(key);
    if (!t) {
      t = mintToken(secret, merchantId, {
        scopes,
        issuer: config.auth.issuer,
        audience: config.auth.audience,
      });
      tokens.set(key, t);
    }
    return t;
  };
  const call = async (method: string, path: string, opts: CallOptions = {}): Promise<TestResponse> => {
    const headers: Record<string, string> = { ...opts.headers };
    const bearer = opts.token === undefined ? await token(opts.merchant) : opts.token;
    if (bearer !== null) headers.Authorization = `Bearer ${bearer}`;
    if (opts.idempotencyKey) headers["Idempotency-Key"] = opts.idempotencyKey;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
      headers["Content-Type"] ??= "application/json";
    }
    const res = await app.request(path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {}
    return { status: res.status, headers: res.headers, text, body: parsed };
  };
  return {
    service,
    config,
    app,
    call,
    token,
    close: async () => {
      await service.db.close();
      await service.cache.close();
    },
  };
}

/** Creates an order and a payment for it; returns both. */
export async function orderWithPayment(
  t: TestService,
  options: {
    amount?: number;
    currency?: string;
    payment_method?: string;
    capture_method?: string;
    merchant?: string;
  } = {},
) {
  const order = await t.call("POST", "/v1/orders", {
    merchant: options.merchant,
    body: { amount: options.amount ?? 1999, currency: options.currency ?? "USD" },
  });
  if (order.status !== 201) throw new Error(`order: ${order.status} ${JSON.stringify(order.body)}`);
  const payment = await t.call("POST", "/v1/payments", {
    merchant: options.merchant,
    body: {
      order_id: order.body.id,
      payment_method: options.payment_method ?? "pm_card_visa",
      ...(options.capture_method ? { capture_method: options.capture_method } : {}),
    },
  });
  if (payment.status !== 201) throw new Error(`payment: ${payment.status} ${JSON.stringify(payment.body)}`);
  return { order: order.body, payment: payment.body };
}
