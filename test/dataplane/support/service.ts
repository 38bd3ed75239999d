import type { Cache } from "../../../lib/cache/cache.ts";
import { openCache } from "../../../lib/cache/index.ts";
import type { Env } from "../../../lib/config/env.ts";
import { loadConfig } from "../../../lib/config/index.ts";
import type { Db } from "../../../lib/db/db.ts";
import type { ServiceContext } from "../../../lib/payments/context.ts";
import { loadApp } from "../../../lib/runtime/apps.ts";
import { mintToken } from "../../../lib/runtime/dev-token.ts";
import { createService } from "../../../lib/runtime/service.ts";
import { createLogger } from "../../../lib/telemetry/logger.ts";
import { TEST_SECRET, type TestResponse } from "../../support/harness.ts";

export interface LogLine {
  level: number;
  msg?: string;
  [field: string]: unknown;
}

export interface DataplaneService {
  service: ServiceContext;
  app: Awaited<ReturnType<typeof loadApp>>;
  call(
    method: string,
    path: string,
    options?: { body?: unknown; merchant?: string; idempotencyKey?: string },
  ): Promise<TestResponse>;
  /** Warnings and errors the service logged, parsed. */
  logs: LogLine[];
  close(): Promise<void>;
}

/** The whole service in-process on a given Db, with its log lines captured; Redis from REDIS_URL in env. */
export async function startService(options: { db: Db; env?: Env; cache?: Cache }): Promise<DataplaneService> {
  const config = loadConfig({
    NODE_ENV: "test",
    JWT_SECRET: TEST_SECRET,
    RATE_LIMIT_RPS: "100000",
    RATE_LIMIT_BURST: "200000",
    ...options.env,
  });
  const logs: LogLine[] = [];
  const log = createLogger("warn", { write: (line: string) => void logs.push(JSON.parse(line)) });
  const cache = options.cache ?? (await openCache(config, log));
  const service = await createService(config, { db: options.db, cache, log, migrate: false });
  const app = await loadApp(service, "all");
  const tokens = new Map<string, Promise<string>>();
  return {
    service,
    app,
    logs,
    async call(method, path, opts = {}) {
      const merchant = opts.merchant ?? "acct_dataplane";
      if (!tokens.has(merchant)) tokens.set(merchant, mintToken(config.auth.secret as Uint8Array, merchant));
      const headers: Record<string, string> = { Authorization: `Bearer ${await tokens.get(merchant)}` };
      if (opts.idempotencyKey) headers["Idempotency-Key"] = opts.idempotencyKey;
      if (opts.body !== undefined) headers["Content-Type"] = "application/json";
      const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
      const res = await app.request(path, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {}
      return { status: res.status, headers: res.headers, text, body: parsed };
    },
    async close() {
      await service.cache.close();
      await service.db.close();
    },
  };
}

/** Polls until check() holds, up to a deadline; returns whether it did. For recovery, never for speed. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
