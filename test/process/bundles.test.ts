import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import Module from "node:module";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { Script } from "node:vm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digestOf, readCodeCache } from "../../lib/runtime/code-cache.ts";
import { mintToken } from "../../lib/runtime/dev-token.ts";
import { bundle } from "../../scripts/bundle.ts";
import {
  postgresSkipReason,
  redisSkipReason,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
} from "../support/backends.ts";
import { freePort } from "../support/ports.ts";

/**
 * Each function bundle started as the image starts it: the same build (scripts/bundle.ts, what the Dockerfile's
 * `npm run build` runs), `node <outdir>/main.js` with NODE_ENV=production, FUNCTION_TARGET and PORT (which runs
 * <outdir>/functions/<name>.cjs with its recorded V8 code cache), against the
 * machine's PostgreSQL (migrated by the bundle's own migrate entry, as the Kubernetes Job does). Each answers
 * /health, /ready and one real request of its own — and not the routes of another function — and then reports its
 * Redis connection up.
 */
const skip = await postgresSkipReason();
if (skip) console.warn(`bundles: skipped: ${skip}`);
// With Redis, each bundle also proves its Redis client loads from the bundle (ioredis is imported on demand).
const noRedis = await redisSkipReason();
if (noRedis) console.warn(`bundles: without Redis: ${noRedis}`);

const run = promisify(execFile);
const ROOT = new URL("../../", import.meta.url).pathname;
const SECRET = "bundle-test-secret-0123456789abcdef";
const schema = `b_${randomBytes(4).toString("hex")}`;
const outdir = join(ROOT, "node_modules", ".cache", `payment-bundles-${randomBytes(4).toString("hex")}`);
let token: string;
let orderId: string;

const env = (extra: Record<string, string>) => ({
  PATH: process.env.PATH ?? "",
  NODE_ENV: "production",
  DATABASE_URL: TEST_DATABASE_URL,
  DB_SCHEMA: schema,
  JWT_SECRET: SECRET,
  LOG_LEVEL: "warn",
  ...(noRedis ? {} : { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: `${schema}:` }),
  ...extra,
});

beforeAll(async () => {
  if (skip) return;
  await bundle(outdir, ROOT);
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  await run("node", [join(outdir, "migrate.js")], { env: env({}) });
  token = await mintToken(new TextEncoder().encode(SECRET), "acct_bundles");
}, 120_000);

afterAll(async () => {
  await rm(outdir, { recursive: true, force: true });
  if (skip) return;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

interface Probe {
  method: string;
  path: () => string;
  body?: unknown;
  status: number;
  /** A route of another function, which this one must not serve. */
  foreign: string;
}

const PROBES: Record<string, Probe> = {
  create: {
    method: "POST",
    path: () => "/v1/orders",
    body: { amount: 990, currency: "USD" },
    status: 201,
    foreign: "/v1/orders/x",
  },
  status: { method: "GET", path: () => `/v1/orders/${orderId}`, status: 200, foreign: "/v1/orders" },
  confirm: {
    method: "POST",
    path: () => `/v1/payments/pay_${"0".repeat(32)}/confirm`,
    status: 404,
    foreign: "/v1/orders",
  },
  cancel: { method: "POST", path: () => `/v1/orders/${orderId}/cancel`, status: 200, foreign: "/v1/orders" },
  webhook: {
    method: "POST",
    path: () => "/v1/webhooks/sandbox",
    body: { id: "evt" },
    status: 400,
    foreign: "/v1/orders",
  },
  health: { method: "GET", path: () => "/openapi.json", status: 200, foreign: "/v1/orders" },
};

describe.skipIf(skip)("function bundles as the image runs them", () => {
  // In this order: create makes the order that status reads and cancel cancels.
  for (const name of ["create", "status", "confirm", "webhook", "health", "cancel"]) {
    it(`${name}: /health, /ready, one real request, nothing else`, async () => {
      const probe = PROBES[name] as Probe;
      const { base, child } = await startBundle(name);
      try {
        expect((await fetch(`${base}/health`)).status).toBe(200);
        const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
        const res = await fetch(`${base}${probe.path()}`, {
          method: probe.method,
          headers,
          body: probe.body === undefined ? undefined : JSON.stringify(probe.body),
        });
        const body = (await res.json()) as { id?: string; status?: string };
        expect(res.status, JSON.stringify(body)).toBe(probe.status);
        if (name === "create") orderId = body.id as string;
        if (name === "cancel") expect(body.status).toBe("canceled");
        const foreign = await fetch(`${base}${probe.foreign}`, {
          method: probe.method === "GET" ? "POST" : "GET",
          headers,
        });
        expect(foreign.status).toBe(404);
        if (!noRedis) {
          const cacheCheck = async () =>
            ((await (await fetch(`${base}/ready`)).json()) as { checks: { cache: string } }).checks.cache;
          await expect.poll(cacheCheck, { timeout: 5_000 }).toBe("ok");
        }
      } finally {
        await stop(child);
      }
    }, 60_000);
  }

  it("starts each function from its own bundle, whose V8 code cache this Node accepts", async () => {
    for (const name of Object.keys(PROBES)) {
      const file = join(outdir, "functions", `${name}.cjs`);
      const source = await readFile(file);
      const cached = readCodeCache(file, digestOf(source));
      expect(cached.unused, name).toBeUndefined();
      const script = new Script(Module.wrap(source.toString("utf8")), {
        filename: file,
        cachedData: cached.data,
      });
      // Refused, the bundle would still run, compiled from scratch: correct, but the cold start loses the cache.
      expect(script.cachedDataRejected, name).toBe(false);
    }
  });

  it.skipIf(noRedis)(
    "status: answers every read of a steady stream while its Redis client loads and takes over",
    async () => {
      // As a scaled-from-zero instance meets its backlog: reads from 50 connections from the first moment it is
      // ready, through the Redis client's load, its first connection and the shared rate limiter's take-over.
      const { base, child, exited } = await startBundle("status", {
        RATE_LIMIT_RPS: "1000000",
        RATE_LIMIT_BURST: "1000000",
      });
      try {
        const headers = { Authorization: `Bearer ${token}` };
        const statuses = new Map<number | string, number>();
        const until = Date.now() + 2_500;
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            while (Date.now() < until) {
              const status = await fetch(`${base}/v1/orders/${orderId}`, { headers }).then(
                async (r) => {
                  await r.arrayBuffer();
                  return r.status;
                },
                (e: Error) => e.message,
              );
              statuses.set(status, (statuses.get(status) ?? 0) + 1);
            }
          }),
        );
        expect([...statuses.keys()]).toEqual([200]);
        expect(exited()).toBe(false);
      } finally {
        await stop(child);
      }
    },
    60_000,
  );
});

describe.skipIf(skip)("tracing in a function bundle", () => {
  // The SDK is bundled apart from the functions (_otel.cjs, loaded only when an exporter is configured), each with
  // its own copy of @opentelemetry/api: the function's spans must still reach the SDK the other copy registered.
  it("status: exports the request's server span, continuing the caller's trace", async () => {
    const received: { resourceSpans?: { scopeSpans: { spans: { name: string; traceId: string }[] }[] }[] }[] =
      [];
    const collector = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => {
        if (req.url === "/v1/traces") received.push(JSON.parse(body));
        res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
      });
    });
    collector.listen(0, "127.0.0.1");
    await once(collector, "listening");
    const { port } = collector.address() as AddressInfo;
    const caller = randomBytes(16).toString("hex");
    const { base, child } = await startBundle("status", {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_METRICS_EXPORTER: "none",
    });
    try {
      const res = await fetch(`${base}/v1/orders/ord_${"0".repeat(32)}`, {
        headers: { Authorization: `Bearer ${token}`, traceparent: `00-${caller}-b7ad6b7169203331-01` },
      });
      expect(res.status).toBe(404);
    } finally {
      await stop(child); // spans still batched are sent on SIGTERM
      collector.close();
    }
    const spans = received
      .flatMap((r) => r.resourceSpans ?? [])
      .flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
    expect(spans.filter((s) => s.traceId === caller).map((s) => s.name)).toContain("GET /v1/orders/:id");
  }, 60_000);
});

/** Starts a bundle as the image does and waits for its first 200 on /ready. */
async function startBundle(name: string, extra: Record<string, string> = {}) {
  const port = await freePort();
  let output = "";
  let hasExited = false;
  const child: ChildProcess = spawn("node", [join(outdir, "main.js")], {
    env: env({ FUNCTION_TARGET: name, PORT: String(port), ...extra }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  child.once("exit", () => {
    hasExited = true;
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await fetch(`${base}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      await stop(child);
      throw new Error(`${name} never became ready:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { base, child, exited: () => hasExited, output: () => output };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  await new Promise((resolve) => child.once("exit", resolve));
}
