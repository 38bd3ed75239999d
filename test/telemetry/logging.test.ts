/**
 * What the service writes to its log when requests carry secrets and personal data everywhere: headers, bodies,
 * query strings, and error messages that quote them. None of it may reach the log, while every request still gets
 * its one line with the fields an operator searches by.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config/index.ts";
import type { Db } from "../../lib/db/db.ts";
import type { ServiceContext } from "../../lib/payments/context.ts";
import { loadApp } from "../../lib/runtime/apps.ts";
import { mintToken } from "../../lib/runtime/dev-token.ts";
import { createService } from "../../lib/runtime/service.ts";
import { createLogger } from "../../lib/telemetry/logger.ts";
import { openTestDb, TEST_SECRET } from "../support/harness.ts";

interface LogLine {
  level: number;
  msg?: string;
  request_id?: string;
  trace_id?: string;
  method?: string;
  route?: string;
  status?: number;
  duration_ms?: number;
  merchant?: string;
  err?: { type: string; message: string; stack?: string };
  [key: string]: unknown;
}

const SECRETS = {
  password: "hunter2-Pa55word",
  email: "jane.doe@example.com",
  phone: "+7 912 345-67-89",
  phoneDigits: "9123456789",
  pan: "4242424242424242",
  panSpaced: "4242 4242 4242 4242",
  apiKey: "sk_live_51HxTestKey0123456789abcdef",
  webhookSecret: "whsec_Abc123SecretValue",
} as const;
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";

let service: ServiceContext;
let app: Awaited<ReturnType<typeof loadApp>>;
let db: Db;
let jwt: string;
const output: string[] = [];
/** Set to make the database fail with an error that quotes every secret (a driver echoing its input). */
let failDatabase = false;

beforeAll(async () => {
  const config = loadConfig({
    NODE_ENV: "test",
    LOG_LEVEL: "info",
    JWT_SECRET: TEST_SECRET,
    RATE_LIMIT_RPS: "100000",
    RATE_LIMIT_BURST: "200000",
  });
  db = await openTestDb();
  const failing: Db = {
    ...db,
    query: async (sql, params) => {
      if (failDatabase) {
        throw new Error(
          `query failed for ${SECRETS.email} (${SECRETS.phone}) card ${SECRETS.pan} at postgres://app:${SECRETS.password}@db/payments with ${jwt}`,
        );
      }
      return db.query(sql, params);
    },
  };
  const log = createLogger(config.logLevel, { write: (line: string) => void output.push(line) });
  service = await createService(config, { db: failing, log, migrate: false });
  app = await loadApp(service, "all");
  jwt = await mintToken(config.auth.secret as Uint8Array, "acct_logs");
});
afterAll(async () => {
  await db.close();
  await service.cache.close();
});

const lines = (): LogLine[] =>
  output
    .join("")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
const linesOf = (requestId: string) => lines().filter((l) => l.request_id === requestId);

async function send(
  requestId: string,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
) {
  const res = await app.request(path, {
    method,
    headers: {
      Authorization: `Bearer ${jwt}`,
      "X-Request-Id": requestId,
      "Content-Type": "application/json",
      "X-Customer-Email": SECRETS.email,
      "X-Api-Key": SECRETS.apiKey,
      Cookie: `session=${SECRETS.password}`,
      ...options.headers,
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

describe("request logs", () => {
  it("never contain tokens, secrets, card numbers, e-mail addresses or phone numbers", async () => {
    const created = await send("log-create", "POST", `/v1/orders?email=${SECRETS.email}&token=${jwt}`, {
      headers: { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` },
      body: {
        amount: 1999,
        currency: "USD",
        description: `for ${SECRETS.email}, call ${SECRETS.phone}, token ${jwt}`,
        metadata: { phone: SECRETS.phone, note: `key ${SECRETS.apiKey} ${SECRETS.webhookSecret}` },
      },
    });
    expect(created.status).toBe(201);
    // A card number is refused (400) before anything is stored.
    const refused = await send("log-pan", "POST", "/v1/orders", {
      body: { amount: 100, currency: "USD", description: `card ${SECRETS.panSpaced}` },
    });
    expect(refused.status).toBe(400);
    expect(
      (
        await send(
          "log-404",
          "GET",
          `/v1/orders/ord_${"a".repeat(32)}?card=${SECRETS.pan}&phone=${SECRETS.phone}`,
        )
      ).status,
    ).toBe(404);
    expect(
      (await send("log-401", "GET", "/v1/orders", { headers: { Authorization: `Bearer ${jwt}x` } })).status,
    ).toBe(401);
    failDatabase = true;
    try {
      expect((await send("log-500", "GET", `/v1/orders/${created.body.id}`)).status).toBe(500);
    } finally {
      failDatabase = false;
    }

    const text = output.join("");
    const leaked = [
      ...Object.entries(SECRETS),
      ["jwt", jwt],
      ["jwt signature", jwt.split(".")[2] ?? ""],
    ].filter(([, secret]) => text.includes(secret as string));
    expect(leaked.map(([name]) => name)).toEqual([]);
    // The error made it to the log, redacted rather than dropped.
    expect(text).toContain("[REDACTED_EMAIL]");
    expect(text).toContain("[REDACTED_PAN]");
  });

  it("write one line per request with method, route template, status, duration, request id, trace id, merchant", () => {
    const [line, ...more] = linesOf("log-create").filter((l) => l.route !== undefined);
    expect(more).toEqual([]);
    expect(line).toMatchObject({
      level: 30,
      request_id: "log-create",
      trace_id: TRACE_ID,
      method: "POST",
      route: "/v1/orders",
      status: 201,
      merchant: "acct_logs",
    });
    expect(line?.duration_ms).toEqual(expect.any(Number));
    // Templates, not paths: the id of a 404 is not in the line.
    expect(linesOf("log-404").find((l) => l.route)).toMatchObject({ route: "/v1/orders/:id", status: 404 });
    expect(linesOf("log-401").find((l) => l.route)).toMatchObject({ route: "/v1/orders", status: 401 });
  });

  it("log a 5xx with its stack, and a 4xx without one", () => {
    const failure = linesOf("log-500").find((l) => l.err);
    expect(failure).toMatchObject({ level: 50, msg: "unhandled error", err: { type: "Error" } });
    expect(failure?.err?.stack).toMatch(/\n\s+at /);
    expect(linesOf("log-500").find((l) => l.route)).toMatchObject({ status: 500 });

    for (const id of ["log-pan", "log-404", "log-401"]) {
      const found = linesOf(id);
      expect(found.length, id).toBeGreaterThan(0);
      expect(
        found.filter((l) => l.err !== undefined || l.level >= 50),
        id,
      ).toEqual([]);
    }
  });
});

describe("the log level", () => {
  it("comes from configuration: LOG_LEVEL=warn drops the request lines", () => {
    const written: string[] = [];
    const log = createLogger(loadConfig({ NODE_ENV: "test", LOG_LEVEL: "warn" }).logLevel, {
      write: (line: string) => void written.push(line),
    });
    log.info({ route: "/v1/orders" });
    log.warn("kept");
    expect(written.map((l) => JSON.parse(l).msg)).toEqual(["kept"]);
  });
});
