/**
 * Cold start and footprint of each function bundle, spawned as the container runs it (`node dist/main.js` with
 * FUNCTION_TARGET), against the machine's PostgreSQL and Redis: time from spawn to the first 200 on /ready, to the
 * first real answer (one request the function serves), idle RSS, and RSS after a short burst. Median of several
 * runs; the functions-framework entry beside it for comparison.
 *
 *   npx tsx bench/cold-start.ts [--runs 5] [--skip-build] [--baseline <dir>]
 *
 * --baseline adds each function started from another build (say an earlier commit's `dist/`, built in a worktree),
 * in the same rounds: a before/after measured side by side on a machine whose speed drifts.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { mintToken } from "../lib/runtime/dev-token.ts";
import { freePort } from "./children.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    "skip-build": { type: "boolean", default: false },
    baseline: { type: "string" },
  },
});
const RUNS = Number(values.runs);
const SECRET = "cold-start-bench-secret-0123456789";
const ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";
const DATABASE = `coldstart_${Date.now()}`;
const DATABASE_URL = `postgres://postgres@127.0.0.1:5432/${DATABASE}`;
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const BARE_SERVER =
  "require('node:http').createServer((q, s) => s.end('{}')).listen(Number(process.env.PORT), '0.0.0.0')";

type Probe = { method: string; path: string; body?: unknown; expect: number };

const rssMiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
// User + system CPU of the process so far (clock ticks of 10 ms): steadier than wall time on a busy machine.
const cpuMs = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function until(url: string, init: RequestInit, ok: (status: number) => boolean, deadlineMs = 20_000) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      const res = await fetch(url, init);
      await res.arrayBuffer();
      if (ok(res.status)) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`no answer from ${url}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function measure(command: string[], env: Record<string, string>, probe: Probe, token: string) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const started = performance.now();
  const child: ChildProcess = spawn(
    command[0] as string,
    command.slice(1).map((a) => a.replace("$PORT", String(port))),
    {
      // Only what a Knative Service gives its container, not this shell's environment: a variable such as
      // NODE_EXTRA_CA_CERTS (set on some machines) makes Node parse a CA bundle at start-up, ≈ 40 ms here.
      env: { PATH: process.env.PATH ?? "", ...env, PORT: String(port) },
      stdio: "ignore",
    },
  );
  try {
    await until(`${base}/ready`, {}, (s) => s === 200);
    const ready = performance.now() - started;
    const init: RequestInit = {
      method: probe.method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: probe.body === undefined ? undefined : JSON.stringify(probe.body),
    };
    await until(`${base}${probe.path}`, init, (s) => s === probe.expect);
    const firstAnswer = performance.now() - started;
    const cpu = cpuMs(child.pid as number);
    await new Promise((r) => setTimeout(r, 300));
    const idle = rssMiB(child.pid as number);
    await Promise.all(
      Array.from({ length: 200 }, () => fetch(`${base}${probe.path}`, init).then((r) => r.arrayBuffer())),
    );
    const loaded = rssMiB(child.pid as number);
    return { ready, firstAnswer, cpu, idle, loaded };
  } finally {
    child.kill("SIGKILL");
  }
}

async function main() {
  if (!values["skip-build"]) execFileSync("npx", ["tsx", "scripts/build.ts"], { stdio: "inherit" });
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${DATABASE}`);
  try {
    execFileSync("node", ["dist/migrate.js"], {
      env: { ...process.env, DATABASE_URL, NODE_ENV: "production", JWT_SECRET: SECRET },
    });
    const token = await mintToken(new TextEncoder().encode(SECRET), "acct_coldstart");
    const db = new pg.Client({ connectionString: DATABASE_URL });
    await db.connect();
    const orderId = `ord_${"a".repeat(32)}`;
    await db.query(
      "INSERT INTO orders (id, merchant_id, amount, currency) VALUES ($1, 'acct_coldstart', 100, 'USD')",
      [orderId],
    );
    await db.end();

    const env = { NODE_ENV: "production", DATABASE_URL, REDIS_URL, JWT_SECRET: SECRET, LOG_LEVEL: "warn" };
    const probes: Record<string, Probe> = {
      create: { method: "POST", path: "/v1/orders", body: { amount: 100, currency: "USD" }, expect: 201 },
      confirm: { method: "POST", path: `/v1/payments/pay_${"0".repeat(32)}/confirm`, expect: 404 },
      cancel: { method: "POST", path: `/v1/payments/pay_${"0".repeat(32)}/cancel`, expect: 404 },
      status: { method: "GET", path: `/v1/orders/${orderId}`, expect: 200 },
      // A provider notification whose signature does not verify: the route, the raw body and the verifier run.
      webhook: { method: "POST", path: "/v1/webhooks/sandbox", body: { id: "evt_cold_start" }, expect: 400 },
      health: { method: "GET", path: "/openapi.json", expect: 200 },
      all: { method: "GET", path: `/v1/orders/${orderId}`, expect: 200 },
    };
    const rows: string[] = [];
    const cases: [string, string[], Record<string, string>, Probe][] = [
      ...Object.entries(probes).map(
        ([fn, probe]) =>
          [fn, ["node", "dist/main.js"], { ...env, FUNCTION_TARGET: fn }, probe] as [
            string,
            string[],
            Record<string, string>,
            Probe,
          ],
      ),
      ...(values.baseline
        ? Object.entries(probes).map(
            ([fn, probe]) =>
              [
                `${fn} (baseline)`,
                ["node", join(values.baseline as string, "main.js")],
                { ...env, FUNCTION_TARGET: fn },
                probe,
              ] as [string, string[], Record<string, string>, Probe],
          )
        : []),
      // The floor on this machine: Node itself starting a bare node:http server that answers at once.
      [
        "bare node:http (reference)",
        ["node", "-e", BARE_SERVER],
        env,
        { method: "GET", path: "/", expect: 200 },
      ],
      [
        "status (functions-framework)",
        [
          "node",
          "node_modules/@google-cloud/functions-framework/build/src/main.js",
          "--source=dist/functions-framework.js",
          "--target=status",
          "--port=$PORT",
        ],
        env,
        probes.status as Probe,
      ],
    ];
    // Round robin, one start of each case per round: a machine that slows down or speeds up during the run
    // (other tenants, the page cache) weighs on every case alike instead of on whichever ran at that moment.
    const results = new Map<string, Awaited<ReturnType<typeof measure>>[]>(cases.map(([name]) => [name, []]));
    for (let i = 0; i < RUNS; i++) {
      for (const [name, command, caseEnv, probe] of cases) {
        results.get(name)?.push(await measure(command, caseEnv, probe, token));
      }
      process.stderr.write(`round ${i + 1} of ${RUNS} done\n`);
    }
    for (const [name, runs] of results) {
      const m = (k: keyof Awaited<ReturnType<typeof measure>>) => median(runs.map((r) => r[k]));
      rows.push(
        `| ${name} | ${m("ready").toFixed(0)} | ${m("firstAnswer").toFixed(0)} | ${m("cpu").toFixed(0)} | ${m("idle").toFixed(1)} | ${m("loaded").toFixed(1)} |`,
      );
    }
    const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1];
    console.log(
      `\nCold start, median of ${RUNS} runs; ${cpu}, Node ${process.version}; PostgreSQL and Redis on loopback.\n`,
    );
    console.log(
      "| function | spawn → /ready (ms) | spawn → first real answer (ms) | CPU until then (ms) | idle RSS (MiB) | RSS after 200 requests (MiB) |",
    );
    console.log("| --- | --- | --- | --- | --- | --- |");
    for (const row of rows) console.log(row);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin.end();
  }
}

await main();
