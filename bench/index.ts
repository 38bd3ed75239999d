/**
 * `npm run bench`: the seed's load mix against the service on this machine, with the ceilings that make the numbers
 * mean something (bare node:http, pgbench, the other runtime), all in one invocation. `--smoke` runs the same
 * pipeline for a few seconds and exits 0 when nothing unexpected failed. See `npm run bench -- --help`.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { mintToken } from "../lib/runtime/dev-token.ts";
import { type Child, freePort, functionsFrameworkBin, startChild, stopAllChildren } from "./children.ts";
import {
  createScratchDatabase,
  type ScratchDatabase,
  seedUnconfirmedPayments,
  unsentEvents,
} from "./database.ts";
import { type FixedRequest, type FixedResult, fixedLoad, mergeRounds } from "./fixed-load.ts";
import { type Merchant, MIX, pickWeighted } from "./journeys.ts";
import { type PreparedQueue, runClosedLoop, runPacedMix, seedPayments } from "./load.ts";
import { type Phase, parseOptions } from "./options.ts";
import { CONFIRM_SCRIPT, FLOW_SCRIPT, preparePgbench, runPgbench } from "./pgbench.ts";
import { machine, startUsage, type Usage } from "./proc.ts";
import { summarizeProfile } from "./profile.ts";
import { countKeys, deleteKeys, redisReachable } from "./redis-keys.ts";
import { type BenchResults, type ConfirmOnly, fixedRatio, markdown, ratio, roundsRatio } from "./report.ts";
import { JWT_SECRET, LOG_LEVEL, RATE_LIMIT, type ServiceBackends, serviceEnv } from "./service-env.ts";
import { evaluateTargets } from "./targets.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const run = promisify(execFile);
const began = performance.now();
const log = (line: string) =>
  process.stderr.write(`[bench ${((performance.now() - began) / 1000).toFixed(1)}s] ${line}\n`);

const options = parseOptions(process.argv.slice(2));
const runId = `bench_${Date.now()}`;
const wants = (phase: Phase) => options.phases.includes(phase);
/**
 * The bundle the children run: a private copy of dist/ (inside the project, so node_modules still resolves),
 * because `npm start` and the tests that run it rebuild dist/ at any moment and a run must not lose its server.
 */
const BUNDLE = join(ROOT, "bench/results", `dist-${runId}`);
/** Scratch database, data dir and Redis keys to remove, also when the bench is interrupted. */
const cleanups: (() => Promise<void>)[] = [];

/** The CPU a process and the machine used over a measured window, from callbacks the load runs at its edges. */
function cpuOverWindow(pid: number) {
  let usage: { stop: () => Usage } | undefined;
  let used: Usage | null = null;
  return {
    callbacks: {
      onWindowOpen: () => {
        usage = startUsage(pid);
      },
      onWindowClose: () => {
        used = usage?.stop() ?? null;
      },
    },
    used: () => used,
  };
}

/** How many events the bench's sink has received. */
async function sinkCount(port: number): Promise<number> {
  const reply = await fetch(`http://127.0.0.1:${port}/`);
  return ((await reply.json()) as { received: number }).received;
}

async function cleanUp(): Promise<void> {
  stopAllChildren();
  for (const fn of cleanups.splice(0)) await fn().catch((e) => log(`clean-up: ${e}`));
}

/** How a service child is started: the bundle (what the image runs) or the sources through tsx. */
function serviceArgs(profileDir?: string): string[] {
  const profile = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  return options.runtime === "dist"
    ? [...profile, join(BUNDLE, "main.js")]
    : ["--import", "tsx", ...profile, "lib/runtime/main.ts"];
}

function functionsFrameworkArgs(port: number): string[] {
  const target = ["--target=status", `--port=${port}`];
  return options.runtime === "dist"
    ? [functionsFrameworkBin(), `--source=${join(BUNDLE, "functions-framework.js")}`, ...target]
    : ["--import", "tsx", functionsFrameworkBin(), "--source=lib/runtime/functions-framework.ts", ...target];
}

async function startService(
  backends: ServiceBackends,
  name: string,
  extra: Record<string, string> = {},
  profileDir?: string,
): Promise<Child> {
  const port = await freePort();
  log(`starting ${name} on :${port}`);
  const child = await startChild(name, serviceArgs(profileDir), serviceEnv(backends, port, extra), port, {
    cwd: ROOT,
  });
  log(`${name} ready`);
  return child;
}

/** Reads one counter of the service's Prometheus text (summed over the label sets that match). */
async function counter(port: number, name: string, labels: string[]): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    let sum: number | undefined;
    for (const line of text.split("\n")) {
      if (!line.startsWith(`${name}{`) || !labels.every((l) => line.includes(l))) continue;
      sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
    }
    return sum;
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const results: BenchResults = {
    started_at: startedAt.toISOString(),
    finished_at: "",
    mode: options.smoke ? "smoke" : "full",
    command: `npx tsx bench/index.ts ${process.argv.slice(2).join(" ")}`.trim(),
    machine: { ...machine(), loadavg_at_start: loadavg().map((l) => Math.round(l * 100) / 100) },
    setup: {
      service: "",
      database: "",
      cache: "",
      node_env: options.embedded ? "development" : "production",
      log_level: LOG_LEVEL,
      rate_limit: `${RATE_LIMIT}/s, burst ${RATE_LIMIT}`,
      db_pool_max: options.pool,
      merchants: options.merchants,
      provider_latency_ms: options.providerLatencyMs,
      overrides: options.serviceEnv,
      load_generator:
        "this process, in its own process beside the service's; the mix and the confirm loop are closed loops of " +
        "virtual users on node:http keep-alive agents (one connection each, no think time), fixed GETs run on " +
        "autocannon",
      cores:
        "nothing is pinned: the service (one Node process, one event loop) and this load generator each take at " +
        "most about one core, PostgreSQL and Redis share the same cores; each run reports who used how much.",
    },
    mix: null,
    paced: null,
    events: null,
    references: { http: null, confirm: null, runtimes: null },
    targets: [],
    unexpected_errors: 0,
    skipped: [],
    server_problems: {},
    profiles: {},
    ok: false,
  };
  const outDir = resolve(ROOT, options.out);
  await mkdir(outDir, { recursive: true });

  const merchants: Merchant[] = await Promise.all(
    Array.from({ length: options.merchants }, async (_, i) => ({
      id: `acct_bench_${i + 1}`,
      token: await mintToken(new TextEncoder().encode(JWT_SECRET), `acct_bench_${i + 1}`, {
        expiresIn: "6h",
      }),
    })),
  );

  if (options.runtime === "dist") {
    // A profile's frames point into the copy; it stays (git-ignored) so bench/profile.ts can map them later.
    if (options.profile) log(`keeping ${BUNDLE} for the profile's source maps`);
    else cleanups.push(() => rm(BUNDLE, { recursive: true, force: true }));
    await privateBundle(options.build);
  }
  results.setup.service =
    options.runtime === "dist"
      ? "node dist/main.js (esbuild bundle, @hono/node-server, FUNCTION_TARGET=all)"
      : "node --import tsx lib/runtime/main.ts (sources, @hono/node-server, FUNCTION_TARGET=all)";

  let database: ScratchDatabase | undefined;
  let dataDir: string | undefined;
  let redisUrl: string | undefined;
  const redisKeyPrefix = `${runId}:`;
  const children: Child[] = [];
  const track = (c: Child) => {
    children.push(c);
    return c;
  };
  const stop = async (c: Child) => {
    await c.stop();
    const problems = c.problems();
    if (Object.keys(problems).length > 0) results.server_problems[c.name] = problems;
    children.splice(children.indexOf(c), 1);
  };

  try {
    if (options.embedded) {
      const dir = await mkdtemp(join(tmpdir(), "bench-pglite-"));
      dataDir = dir;
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      results.setup.database =
        "PGlite (embedded, in the service process), one data dir shared by the runs in turn";
      results.setup.cache = "memory (embedded)";
    } else {
      const db = await createScratchDatabase(options.pgUrl, options.serviceEnv.DB_SCHEMA);
      database = db;
      cleanups.push(() => db.drop());
      results.machine.postgres = database.serverVersion;
      results.setup.database = `PostgreSQL ${database.serverVersion} at ${new URL(options.pgUrl).host}, scratch database ${database.name} (dropped at the end)`;
      if (await redisReachable(options.redisUrl)) {
        const url = options.redisUrl;
        redisUrl = url;
        cleanups.push(() => deleteKeys(url, redisKeyPrefix));
      } else results.skipped.push(`Redis at ${options.redisUrl} unreachable: the service ran without it`);
      log(`migrating ${database.name}`);
      const migrateArgs =
        options.runtime === "dist"
          ? [join(BUNDLE, "migrate.js")]
          : ["--import", "tsx", "lib/db/migrate-cli.ts"];
      await run(process.execPath, migrateArgs, {
        cwd: ROOT,
        env: serviceEnv(
          {
            embedded: false,
            databaseUrl: database.url,
            redisKeyPrefix,
            pool: options.pool,
            providerLatencyMs: 0,
          },
          0,
          { PORT: "3005", ...options.serviceEnv },
        ),
      });
    }
    const sinkPort = await freePort();
    track(
      await startChild(
        "event sink",
        ["--import", "tsx", "bench/event-sink.ts"],
        { ...process.env, PORT: String(sinkPort) },
        sinkPort,
        { cwd: ROOT, readyPath: "/" },
      ),
    );
    const backends: ServiceBackends = {
      eventSink: `http://127.0.0.1:${sinkPort}/`,
      embedded: options.embedded,
      databaseUrl: database ? database.url : `file:${dataDir}`,
      redisUrl,
      redisKeyPrefix,
      pool: options.pool,
      providerLatencyMs: options.providerLatencyMs,
      overrides: options.serviceEnv,
    };

    let kept: Child | undefined;
    // 1. The mix, on a service of its own (the one profiled).
    if (wants("mix")) {
      const profileDir = options.profile ? join(outDir, `profile-${runId}`, "mix") : undefined;
      const service = track(await startService(backends, "service (mix)", {}, profileDir));
      const cpu = cpuOverWindow(service.pid);
      log(
        `mix: ${options.connections} users, ${options.warmup} s warm-up + ${options.duration} s measured (${MIX.map(([n, w]) => `${n} ${w * 100} %`).join(", ")})`,
      );
      const summary = await runClosedLoop({
        port: service.port,
        users: options.connections,
        warmupSeconds: options.warmup,
        durationSeconds: options.duration,
        merchants,
        pick: () => pickWeighted(MIX),
        ...cpu.callbacks,
      });
      results.mix = {
        ...summary,
        users: options.connections,
        warmup_seconds: options.warmup,
        usage: cpu.used(),
      };
      results.setup.cache = await cacheInUse(redisUrl, redisKeyPrefix);
      // A smoke run saves a start-up by reading through the same service; a full run keeps the two apart.
      if (options.smoke && !profileDir) kept = service;
      else await stop(service);
      if (profileDir) results.profiles.mix = await profileIn(profileDir, results.skipped);
    }

    // 1b. The paced mix: the same journeys arriving at a fixed rate, pausing between steps as users do.
    if (wants("paced")) {
      const service = kept ?? track(await startService(backends, "service (paced mix)"));
      kept = undefined;
      // Sessions last seconds (a payment flow pauses 3–8 s): the window opens once as many are open as will be.
      const warmup = options.smoke ? options.warmup : Math.max(options.warmup, 10);
      const cpu = cpuOverWindow(service.pid);
      log(`paced mix: ${options.rate} journeys/s, ${warmup} s warm-up + ${options.duration} s measured`);
      const summary = await runPacedMix({
        port: service.port,
        rate: options.rate,
        connections: options.connections,
        warmupSeconds: warmup,
        durationSeconds: options.duration,
        merchants,
        pick: () => pickWeighted(MIX),
        ...cpu.callbacks,
      });
      results.paced = { ...summary, rate: options.rate, connections: options.connections, usage: cpu.used() };
      if (options.smoke) kept = service;
      else await stop(service);
    }

    // The references' services run without the sink, as pgbench's scripts write their events and send none: they
    // measure the request path against its ceilings; the two mixes measure the whole service, delivery included.
    const referenceBackends: ServiceBackends = { ...backends, eventSink: undefined };

    // 2. A second service for the references: cache-hit reads, /health, the confirm loop.
    let payments: { id: string; merchant: Merchant }[] = [];
    const fixed = {
      connections: options.refConnections,
      warmupSeconds: options.refWarmup,
      durationSeconds: options.refDuration,
    };
    const paymentReads = (): FixedRequest[] =>
      payments.map((p) => ({
        path: `/v1/payments/${p.id}`,
        headers: { authorization: `Bearer ${p.merchant.token}` },
      }));
    if (wants("http") || wants("confirm") || wants("runtimes")) {
      const service = kept ?? track(await startService(referenceBackends, "service (references)"));
      kept = undefined;
      log(`seeding ${options.readPayments} paid payments`);
      payments = await seedPayments(service.port, merchants, options.readPayments);
      if (wants("http")) {
        results.references.http = await httpReferences(service, paymentReads(), (child) =>
          stop(track(child)),
        );
      }
      if (wants("confirm")) {
        const loop = async (scenario: "confirm_flow" | "confirm_prepared", prepared?: PreparedQueue) => {
          const cpu = cpuOverWindow(service.pid);
          const summary = await runClosedLoop({
            port: service.port,
            users: options.refConnections,
            warmupSeconds: options.refWarmup + 1,
            durationSeconds: options.refDuration,
            merchants,
            pick: () => scenario,
            prepared,
            ...cpu.callbacks,
          });
          const confirm = summary.steps.confirm ?? null;
          return {
            users: options.refConnections,
            confirms_per_second: confirm
              ? Math.round((confirm.requests - confirm.errors) / summary.seconds)
              : 0,
            confirm,
            errors: summary.total.errors,
            error_kinds: summary.error_kinds,
            usage: cpu.used(),
          };
        };
        log(`create → confirm loop: ${options.refConnections} users`);
        const flow = await loop("confirm_flow");
        let confirmOnly: ConfirmOnly | null = null;
        if (database) {
          // More than the loop can confirm in its time (pgbench's set-up is sized the same way).
          const count = Math.max(2_000, (options.refWarmup + 1 + options.refDuration) * 2_000);
          log(`confirm loop: ${options.refConnections} users, ${count} payments created beforehand`);
          const byId = new Map(merchants.map((m) => [m.id, m]));
          const prepared = (await seedUnconfirmedPayments(database.tablesUrl, [...byId.keys()], count)).map(
            (p) => ({
              id: p.id,
              merchant: byId.get(p.merchantId) as Merchant,
            }),
          );
          const queue = { payments: prepared, taken: 0 };
          confirmOnly = {
            ...(await loop("confirm_prepared", queue)),
            ran_out: queue.taken >= prepared.length,
          };
        }
        results.references.confirm = {
          service: flow,
          confirm_only: confirmOnly,
          pgbench_confirm: null,
          pgbench_flow: null,
          confirm_vs_pgbench: null,
          flow_vs_pgbench: null,
        };
      }
      await stop(service);
    }

    // 3. The same status route on both runtimes, one after the other.
    if (wants("runtimes")) {
      // Profiled with --profile: this child serves nothing but the cache-hit read, so its profile is that path's.
      const profileDir = options.profile ? join(outDir, `profile-${runId}`, "get-payment") : undefined;
      const fast = track(
        await startService(
          referenceBackends,
          "status on @hono/node-server",
          { FUNCTION_TARGET: "status" },
          profileDir,
        ),
      );
      log("runtimes: @hono/node-server");
      const fastResult = await fixedLoad(fast.port, paymentReads(), { ...fixed, serverPid: fast.pid });
      await stop(fast);
      if (profileDir) results.profiles.get_payment = await profileIn(profileDir, results.skipped);
      const port = await freePort();
      log(`runtimes: functions-framework on :${port}`);
      const ff = track(
        await startChild(
          "status on functions-framework",
          functionsFrameworkArgs(port),
          serviceEnv(referenceBackends, port),
          port,
          {
            cwd: ROOT,
          },
        ),
      );
      const ffResult = await fixedLoad(port, paymentReads(), { ...fixed, serverPid: ff.pid });
      await stop(ff);
      results.references.runtimes = {
        fast_node_server: fastResult,
        functions_framework: ffResult,
        functions_framework_vs_fast: fixedRatio(ffResult, fastResult),
      };
    }

    // 4. The database's ceiling for the same work, with no service in between.
    if (wants("pgbench")) {
      if (!database) {
        results.skipped.push("pgbench: needs PostgreSQL (not with --embedded)");
      } else {
        const seconds = Math.max(1, options.refDuration);
        log(`pgbench: ${options.pool} clients, ${seconds} s per script`);
        await preparePgbench(database.url, seconds, database.schema);
        const prepared = !["false", "0"].includes(options.serviceEnv.DB_PREPARED_STATEMENTS ?? "true");
        const run = {
          clients: options.pool,
          durationSeconds: seconds,
          prepared,
          serviceSchema: database.schema,
        };
        const pgConfirm = await runPgbench(database.url, CONFIRM_SCRIPT, run);
        const pgFlow = await runPgbench(database.url, FLOW_SCRIPT, run);
        const c = results.references.confirm;
        if (c) {
          c.pgbench_confirm = pgConfirm;
          c.pgbench_flow = pgFlow;
          c.confirm_vs_pgbench = c.confirm_only
            ? ratio(c.confirm_only.confirms_per_second, pgConfirm.transactions_per_second)
            : null;
          c.flow_vs_pgbench = ratio(c.service.confirms_per_second, pgFlow.transactions_per_second);
        } else {
          results.references.confirm = {
            service: {
              users: 0,
              confirms_per_second: 0,
              confirm: null,
              errors: 0,
              error_kinds: {},
              usage: null,
            },
            confirm_only: null,
            pgbench_confirm: pgConfirm,
            pgbench_flow: pgFlow,
            confirm_vs_pgbench: null,
            flow_vs_pgbench: null,
          };
        }
        if (pgConfirm.failed > 0 || pgFlow.failed > 0) results.skipped.push("pgbench: some scripts failed");
      }
    }
    // Every service child has stopped (each sends its last events as it stops): what reached the sink, what not.
    for (const c of children.filter((c) => c.name !== "event sink")) await stop(c);
    results.events = {
      received: await sinkCount(sinkPort),
      unsent: database ? await unsentEvents(database.tablesUrl) : null,
    };
    // Without the mix phase, say which cache the other phases' services used (before the keys are cleaned up).
    if (!results.setup.cache) results.setup.cache = await cacheInUse(redisUrl, redisKeyPrefix);
  } finally {
    // Children first: PostgreSQL will not drop a database with the service still connected to it.
    for (const c of [...children]) await c.stop().catch(() => {});
    await cleanUp();
  }

  results.unexpected_errors =
    (results.mix?.total.errors ?? 0) +
    (results.paced?.total.errors ?? 0) +
    (results.references.confirm?.service.errors ?? 0) +
    (results.references.confirm?.confirm_only?.errors ?? 0) +
    [
      results.references.http?.bare_node_http,
      results.references.http?.health,
      results.references.http?.get_payment_cache_hit,
      results.references.runtimes?.fast_node_server,
      results.references.runtimes?.functions_framework,
    ].reduce((sum, r) => sum + (r?.errors ?? 0), 0) +
    (results.references.confirm?.pgbench_confirm?.failed ?? 0) +
    (results.references.confirm?.pgbench_flow?.failed ?? 0);
  results.targets = evaluateTargets(results, options);
  results.ok = results.unexpected_errors === 0;
  results.finished_at = new Date().toISOString();

  const md = markdown(results);
  await writeFile(join(outDir, "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(outDir, "latest.md"), md);
  process.stdout.write(`${md}\n`);
  log(`wrote ${join(options.out, "latest.json")} and ${join(options.out, "latest.md")}`);
  return results.ok ? 0 : 1;
}

/**
 * Our GET /health and cache-hit GET /v1/payments/{id} against the HTTP ceiling, bare node:http answering a constant
 * JSON: interleaved rounds of the three (--ref-rounds), each round's ratios taken side by side, reported as
 * their medians. This machine's speed changes from one minute to the next (the bare server has done twice as many
 * requests/s in one round as in the one before), so one run of each, a minute apart, can say anything.
 */
async function httpReferences(
  service: Child,
  paymentReads: FixedRequest[],
  /** Stops a child and reports what it logged, as the bench's other children are. */
  stopChild: (child: Child) => Promise<void>,
) {
  const port = await freePort();
  log("starting bare node:http");
  const bare = await startChild(
    "bare node:http",
    ["--import", "tsx", "bench/bare-server.ts"],
    { ...process.env, PORT: String(port) },
    port,
    { readyPath: "/", cwd: ROOT },
  );
  const runs = {
    bare: { port, pid: bare.pid, requests: [{ path: "/" }], label: "bare node:http" },
    health: { port: service.port, pid: service.pid, requests: [{ path: "/health" }], label: "GET /health" },
    get: {
      port: service.port,
      pid: service.pid,
      requests: paymentReads,
      label: "GET /v1/payments/{id} (cache hit)",
    },
  };
  const rounds: Record<keyof typeof runs, FixedResult[]> = { bare: [], health: [], get: [] };
  const hitLabels = ['cache="status"', 'result="hit"'];
  const missLabels = ['cache="status"', 'result="miss"'];
  const cacheCounts = () =>
    Promise.all([
      counter(service.port, "cache_requests_total", hitLabels),
      counter(service.port, "cache_requests_total", missLabels),
    ]);
  try {
    const [hits0, misses0] = await cacheCounts();
    for (let i = 0; i < options.refRounds; i++) {
      // The order turns each round, so no run always comes first after the other server has been busy.
      const order = (["bare", "health", "get"] as const).map(
        (_, j, all) => all[(i + j) % all.length] ?? "bare",
      );
      for (const kind of order) {
        const run = runs[kind];
        log(`${run.label}, round ${i + 1} of ${options.refRounds}`);
        rounds[kind].push(
          await fixedLoad(run.port, run.requests, {
            connections: options.refConnections,
            warmupSeconds: i === 0 ? options.refWarmup : Math.min(1, options.refWarmup),
            durationSeconds: Math.max(1, options.refDuration / options.refRounds),
            serverPid: run.pid,
          }),
        );
      }
    }
    const [hits1, misses1] = await cacheCounts();
    const hits = (hits1 ?? 0) - (hits0 ?? 0);
    const misses = (misses1 ?? 0) - (misses0 ?? 0);
    return {
      bare_node_http: mergeRounds(rounds.bare),
      health: mergeRounds(rounds.health),
      get_payment_cache_hit: {
        ...mergeRounds(rounds.get),
        cache_hit_ratio:
          hits1 === undefined ? null : Math.round((hits / Math.max(1, hits + misses)) * 10_000) / 10_000,
      },
      health_vs_bare: roundsRatio(rounds.health, rounds.bare),
      get_payment_vs_bare: roundsRatio(rounds.get, rounds.bare),
    };
  } finally {
    await stopChild(bare);
  }
}

/** The summary of the profile a child wrote into `dir` on exit. */
async function profileIn(dir: string, skipped: string[]) {
  const file = (await readdir(dir).catch(() => [])).find((f) => f.endsWith(".cpuprofile"));
  if (!file) {
    skipped.push(`profile: nothing written to ${dir}`);
    return undefined;
  }
  log(`profile: ${join(dir, file)}`);
  return summarizeProfile(join(dir, file), 25);
}

/** npm run build (unless told not to), then a copy of dist/ for this run; once more if a rebuild raced the copy. */
async function privateBundle(build: boolean): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if (build) {
      log("npm run build");
      await run("npm", ["run", "build"], { cwd: ROOT });
    }
    try {
      await cp(join(ROOT, "dist"), BUNDLE, { recursive: true });
      if (existsSync(join(BUNDLE, "main.js")) && existsSync(join(BUNDLE, "functions-framework.js"))) return;
    } catch (error) {
      if (attempt >= 3) throw error;
    }
    if (!build) throw new Error("dist/ is missing or incomplete: run npm run build or drop --no-build");
    if (attempt >= 3) throw new Error("dist/ kept changing while it was copied");
  }
}

/** Which cache the service really used: Redis if keys appeared under this run's prefix, else its memory cache. */
async function cacheInUse(redisUrl: string | undefined, prefix: string): Promise<string> {
  if (options.embedded) return "memory (embedded)";
  const redisModule = existsSync(join(ROOT, "lib/cache/redis.ts"));
  if (!redisUrl) return "memory (Redis unreachable)";
  const keys = await countKeys(redisUrl, prefix).catch(() => 0);
  if (keys > 0)
    return `Redis at ${new URL(redisUrl).host} (${keys >= 1_000 ? "1000+" : keys} keys under ${prefix})`;
  return redisModule
    ? "memory: REDIS_URL was set and lib/cache/redis.ts exists, but the service wrote no key to Redis (not wired into createService yet)"
    : "memory: REDIS_URL was set but there is no Redis backend yet (lib/cache/redis.ts)";
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    cleanUp().finally(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  async (error) => {
    await cleanUp();
    process.stderr.write(
      `[bench] failed: ${error instanceof Error ? (error.stack ?? error.message) : error}\n`,
    );
    process.exit(2);
  },
);
