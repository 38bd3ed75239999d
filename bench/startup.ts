/**
 * What OpenTelemetry costs a cold start. Spawns the bundle as the container runs it (`node dist/main.js`, one
 * function, production mode, on this machine's PostgreSQL and Redis) with telemetry off (no OTEL_* variables: the
 * SDK is never loaded), with metrics only (OTEL_TRACES_EXPORTER=none: no tracer, no instrumentation) and on (traces
 * and metrics over OTLP to a throwaway local receiver that accepts anything), in rotating order, and reports per
 * mode the median of:
 *   ready     spawn → first 200 on /ready (what Knative waits for before routing)
 *   CPU       CPU time the process used until then (steadier than wall time on a busy machine)
 *   rss       resident memory at that moment
 *   shutdown  SIGTERM → exit (with telemetry on, includes the final span and metrics push)
 *
 *   npx tsx bench/startup.ts [--runs 7] [--target create] [--skip-build]
 *
 * The bundle is built into dist/ and copied to a temporary directory first, so another build of dist/ (tests do
 * that) cannot change it half-way.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { freePort } from "./children.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "7" },
    target: { type: "string", default: "create" },
    "skip-build": { type: "boolean", default: false },
  },
});
const RUNS = Math.max(1, Number(values.runs));
const ROOT = new URL("..", import.meta.url).pathname;
const ADMIN_URL = process.env.BENCH_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const DATABASE = `startup_${process.pid}`;
const DATABASE_URL = ADMIN_URL.replace(/\/[^/]*$/, `/${DATABASE}`);
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const SECRET = "startup-bench-secret-0123456789abcdef";

interface Run {
  readyMs: number;
  /** CPU the process used until ready: less disturbed than wall time by whatever else the machine runs. */
  cpuMs: number;
  rssMiB: number;
  shutdownMs: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
}

/** utime + stime from /proc/<pid>/stat, in ms (clock ticks of 10 ms on Linux). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Copies dist/ beside a package.json ("type": "module") and a link to node_modules, for the externals. */
async function bundleCopy(): Promise<string> {
  if (!values["skip-build"])
    execFileSync("npx", ["tsx", "scripts/build.ts"], { cwd: ROOT, stdio: "inherit" });
  const dir = await mkdtemp(join(tmpdir(), "startup-bench-"));
  await cp(join(ROOT, "dist"), join(dir, "dist"), { recursive: true });
  await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  await symlink(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

/** An OTLP receiver that accepts everything; counts requests so the "on" runs prove they exported. */
async function throwawayCollector() {
  let requests = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      requests++;
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests: () => requests, close: () => server.close() };
}

async function measure(dir: string, env: Record<string, string>): Promise<Run> {
  const port = await freePort();
  const started = performance.now();
  const child: ChildProcess = spawn(process.execPath, [join(dir, "dist/main.js")], {
    cwd: dir,
    env: { PATH: process.env.PATH, ...env, PORT: String(port) },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = once(child, "exit");
  try {
    for (;;) {
      const status = await fetch(`http://127.0.0.1:${port}/ready`).then(
        (r) => r.arrayBuffer().then(() => r.status),
        () => 0,
      );
      if (status === 200) break;
      if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}`);
      if (performance.now() - started > 30_000) throw new Error("not ready after 30 s");
      await new Promise((r) => setTimeout(r, 2));
    }
    const readyMs = performance.now() - started;
    const rss = await rssMiB(child.pid as number);
    const cpu = await cpuMs(child.pid as number);
    const stopping = performance.now();
    child.kill("SIGTERM");
    await exited;
    return { readyMs, cpuMs: cpu, rssMiB: rss, shutdownMs: performance.now() - stopping };
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}

function report(names: string[], runs: Record<string, Run[]>, received: number): void {
  const row = (mode: string) => {
    const r = runs[mode] as Run[];
    return {
      ready: median(r.map((x) => x.readyMs)),
      cpu: median(r.map((x) => x.cpuMs)),
      rss: median(r.map((x) => x.rssMiB)),
      shutdown: median(r.map((x) => x.shutdownMs)),
    };
  };
  const off = row("off");
  const fmt = (n: number, digits = 0) => n.toFixed(digits).padStart(10);
  console.log(
    `\nFUNCTION_TARGET=${values.target}, node ${process.version}, median of ${RUNS} runs per mode (OTLP requests received: ${received})\n`,
  );
  console.log(`${"telemetry".padEnd(14)}  ready ms    CPU ms   RSS MiB shutdown ms   cost vs off`);
  for (const mode of names) {
    const r = row(mode);
    const cost =
      mode === "off"
        ? ""
        : `   +${(r.ready - off.ready).toFixed(0)} ms ready, +${(r.cpu - off.cpu).toFixed(0)} ms CPU, +${(r.rss - off.rss).toFixed(1)} MiB`;
    console.log(`${mode.padEnd(14)}${fmt(r.ready)}${fmt(r.cpu)}${fmt(r.rss, 1)}${fmt(r.shutdown)}${cost}`);
  }
}

async function main() {
  const dir = await bundleCopy();
  const collector = await throwawayCollector();
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${DATABASE}`);
  try {
    const base = {
      NODE_ENV: "production",
      FUNCTION_TARGET: String(values.target),
      DATABASE_URL,
      REDIS_URL,
      REDIS_KEY_PREFIX: `${DATABASE}:`,
      JWT_SECRET: SECRET,
      LOG_LEVEL: "warn",
    };
    // Production runs migrations as a Job before the pods start; so does this.
    execFileSync(process.execPath, [join(dir, "dist/migrate.js")], {
      cwd: dir,
      env: { ...process.env, ...base },
    });
    const on = {
      ...base,
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_SERVICE_NAME: "payment-service",
      OTEL_RESOURCE_ATTRIBUTES: "k8s.namespace.name=payment-service",
      K_SERVICE: String(values.target),
    };
    const modes: Record<string, Record<string, string>> = {
      off: base,
      "metrics only": { ...on, OTEL_TRACES_EXPORTER: "none" },
      on,
    };
    const names = Object.keys(modes);
    const runs: Record<string, Run[]> = Object.fromEntries(names.map((m) => [m, []]));
    await measure(dir, base); // warms the file cache; not counted
    for (let i = 0; i < RUNS; i++) {
      // Rotating the order, so drift on the machine (other processes, caches) falls on every mode alike.
      for (let j = 0; j < names.length; j++) {
        const mode = names[(i + j) % names.length] as string;
        runs[mode]?.push(await measure(dir, modes[mode] as Record<string, string>));
      }
    }
    if (collector.requests() === 0)
      throw new Error("telemetry on exported nothing: the measurement is wrong");
    report(names, runs, collector.requests());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin.end();
    collector.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
