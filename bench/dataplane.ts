import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { serve } from "@hono/node-server";
import type { Cache } from "../lib/cache/cache.ts";
import { openCache } from "../lib/cache/index.ts";
import { loadConfig } from "../lib/config/index.ts";
import type { Db } from "../lib/db/db.ts";
import { openDb } from "../lib/db/index.ts";
import { migrate } from "../lib/db/migrate.ts";
import { openPg } from "../lib/db/pg.ts";
import { loadApp } from "../lib/runtime/apps.ts";
import { mintToken } from "../lib/runtime/dev-token.ts";
import { createService } from "../lib/runtime/service.ts";
import { createLogger } from "../lib/telemetry/logger.ts";

/**
 * The data plane side by side, on this machine: requests/s and latency of
 *   - GET /v1/payments/{id} answered from the Redis status cache,
 *   - the same GET with the status cache off (every read from PostgreSQL; rate limits still in Redis),
 *   - POST /v1/orders (a transaction: order, audit row, outbox event),
 * for the `pg` driver (TCP) and the `neon` driver (WebSocket through scripts/ws-proxy.ts, run as a process of its
 * own as Neon's proxy would be). The service runs in this process on @hono/node-server; autocannon drives it from
 * a worker thread so the load generator does not share the service's event loop.
 *
 *   npx tsx bench/dataplane.ts [--seconds 5] [--connections 16] [--rounds 3]
 *
 * Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test) and Redis (REDIS_URL,
 * default redis://127.0.0.1:6379). Works in a schema of its own, dropped at the end.
 */
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const SECRET = "bench-secret-that-is-long-enough-0123456789";
const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const SECONDS = arg("seconds", 5);
const CONNECTIONS = arg("connections", 16);
// Each case runs this many times, the drivers alternating; the median run is reported (a shared machine is noisy).
const ROUNDS = arg("rounds", 3);

type Driver = "pg" | "neon";
const CASES = ["GET payment, cached", "GET payment, cache off", "POST /v1/orders"] as const;
type CaseName = (typeof CASES)[number];
const log = createLogger("error");
interface Row {
  driver: Driver;
  name: CaseName;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
}

// autocannon in a worker: its own event loop, reporting every response time so p95 is exact.
const LOAD_WORKER = `
const { workerData, parentPort } = require("node:worker_threads");
const autocannon = require(workerData.autocannonPath);
const times = [];
let errors = 0;
const instance = autocannon({ ...workerData.options }, (error, result) => {
  if (error) throw error;
  parentPort.postMessage({ times, errors: errors + result.errors + result.timeouts, duration: result.duration });
});
instance.on("response", (_client, status, _bytes, ms) => {
  if (status >= 200 && status < 300) times.push(ms); else errors++;
});
`;

function load(
  options: Record<string, unknown>,
): Promise<{ times: number[]; errors: number; duration: number }> {
  const autocannonPath = createRequire(import.meta.url).resolve("autocannon");
  return new Promise((resolve, reject) => {
    const worker = new Worker(LOAD_WORKER, { eval: true, workerData: { autocannonPath, options } });
    worker.once("message", resolve).once("error", reject);
  });
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0);

/** Every cache operation except the status cache's: rate limits and idempotency locks stay in Redis. */
function withoutStatusCache(cache: Cache): Cache {
  return {
    ...cache,
    get: (key) => (key.startsWith("status:") ? Promise.resolve(undefined) : cache.get(key)),
    setIfAbsent: (key, value, ttl) =>
      key.startsWith("status:") ? Promise.resolve(false) : cache.setIfAbsent(key, value, ttl),
  };
}

async function startProxy(): Promise<{ url: string; child: ChildProcess }> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const { hostname, port: dbPort } = new URL(DATABASE_URL);
  const script = fileURLToPath(new URL("../scripts/ws-proxy.ts", import.meta.url));
  const child = spawn(
    process.execPath,
    ["--import", "tsx", script, "--port", String(port), "--allow", `${hostname}:${dbPort || 5432}`],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`ws-proxy exited with ${code}`)));
  });
  return { url: `ws://127.0.0.1:${port}`, child };
}

interface Target {
  driver: Driver;
  db: Db;
  redis: Cache;
  config: ReturnType<typeof loadConfig>;
  headers: Record<string, string>;
}

async function openTarget(driver: Driver, schema: string, neonWsProxy?: string): Promise<Target> {
  const config = loadConfig({
    NODE_ENV: "production",
    JWT_SECRET: SECRET,
    DATABASE_URL,
    DB_DRIVER: driver,
    DB_SCHEMA: schema,
    NEON_WS_PROXY: neonWsProxy,
    REDIS_URL,
    REDIS_KEY_PREFIX: `bench:${randomBytes(4).toString("hex")}:`,
    RATE_LIMIT_RPS: "500000",
    RATE_LIMIT_BURST: "1000000",
  });
  const db = await openDb(config.db);
  const redis = await openCache(config, log);
  for (
    let i = 0;
    i < 100 &&
    (await redis.ping().then(
      () => false,
      () => true,
    ));
    i++
  ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const token = await mintToken(config.auth.secret as Uint8Array, "acct_bench");
  return {
    driver,
    db,
    redis,
    config,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
  };
}

async function runCase(target: Target, name: CaseName): Promise<Row> {
  const { db, redis, config, headers } = target;
  const cache = name === "GET payment, cache off" ? withoutStatusCache(redis) : redis;
  const service = await createService(config, { db, cache, log, migrate: false });
  const app = await loadApp(service, "all");
  // Requests still running when the load stops finish before the next case starts.
  let inFlight = 0;
  const server = serve({
    fetch: async (request: Request) => {
      inFlight++;
      try {
        return await app.fetch(request);
      } finally {
        inFlight--;
      }
    },
    port: 0,
    hostname: "127.0.0.1",
  });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  let options: Record<string, unknown>;
  if (name === "POST /v1/orders") {
    options = {
      url: `${base}/v1/orders`,
      method: "POST",
      headers,
      body: JSON.stringify({ amount: 1999, currency: "USD" }),
    };
  } else {
    const post = async (path: string, body: unknown) =>
      (await fetch(`${base}${path}`, { method: "POST", headers, body: JSON.stringify(body) })).json();
    const order = await post("/v1/orders", { amount: 1999, currency: "USD" });
    const payment = await post("/v1/payments", { order_id: order.id, payment_method: "pm_card_visa" });
    options = { url: `${base}/v1/payments/${payment.id}`, headers };
    await fetch(`${base}/v1/payments/${payment.id}`, { headers }); // fills the cache (when on)
  }
  // Warm-up (JIT, pool connections), then the measured run.
  await load({ ...options, connections: CONNECTIONS, duration: 2 });
  const result = await load({ ...options, connections: CONNECTIONS, duration: SECONDS });
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const sorted = result.times.sort((a, b) => a - b);
  return {
    driver: target.driver,
    name,
    rps: sorted.length / result.duration,
    p50: percentile(sorted, 0.5),
    p95: percentile(sorted, 0.95),
    p99: percentile(sorted, 0.99),
    errors: result.errors,
  };
}

const admin = openPg(loadConfig({ NODE_ENV: "test", DATABASE_URL }).db);
const schema = `bench_${randomBytes(4).toString("hex")}`;
const proxy = await startProxy();
const rows: Row[] = [];
try {
  await admin.exec(`CREATE SCHEMA ${schema}`);
  const migrator = await openDb({ ...loadConfig({ NODE_ENV: "test", DATABASE_URL }).db, schema });
  await migrate(migrator);
  await migrator.close();
  const targets = [await openTarget("pg", schema), await openTarget("neon", schema, proxy.url)];
  // Case by case, the drivers one after the other, so both meet the same warm process and database.
  for (const name of CASES) {
    const runs = new Map<Driver, Row[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of targets) {
        const list = runs.get(target.driver) ?? [];
        list.push(await runCase(target, name));
        runs.set(target.driver, list);
      }
    }
    for (const list of runs.values()) {
      const sorted = list.sort((a, b) => a.rps - b.rps);
      const median = sorted[Math.floor(sorted.length / 2)];
      if (median) rows.push({ ...median, errors: list.reduce((n, r) => n + r.errors, 0) });
    }
  }
  for (const target of targets) {
    await target.redis.close();
    await target.db.close();
  }
} finally {
  proxy.child.kill("SIGTERM");
  await admin.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
  await admin.close();
}

const ms = (n: number) => n.toFixed(1);
const find = (driver: Driver, name: CaseName) => rows.find((r) => r.driver === driver && r.name === name);
const lines = [
  `Data plane: ${SECONDS} s per run, ${CONNECTIONS} connections, median of ${ROUNDS} runs (by requests/s);`,
  `autocannon in a worker thread, service in-process; load average ${os.loadavg()[0]?.toFixed(1)} at the end.`,
  "",
  "| driver | case | requests/s | p50 ms | p95 ms | p99 ms | non-2xx/errors |",
  "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ...rows.map(
    (r) =>
      `| ${r.driver} | ${r.name} | ${Math.round(r.rps)} | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.p99)} | ${r.errors} |`,
  ),
  "",
  "| ratio | requests/s | p95 |",
  "| --- | ---: | ---: |",
];
for (const name of CASES) {
  const pg = find("pg", name);
  const neon = find("neon", name);
  if (pg && neon)
    lines.push(
      `| neon/pg, ${name} | ${(neon.rps / pg.rps).toFixed(2)} | ${(neon.p95 / pg.p95).toFixed(2)} |`,
    );
}
for (const driver of ["pg", "neon"] as const) {
  const cached = find(driver, "GET payment, cached");
  const uncached = find(driver, "GET payment, cache off");
  if (cached && uncached) {
    lines.push(
      `| cached/uncached, ${driver} | ${(cached.rps / uncached.rps).toFixed(2)} | ${(cached.p95 / uncached.p95).toFixed(2)} |`,
    );
  }
}
process.stdout.write(`${lines.join("\n")}\n`);
process.exit(0);
