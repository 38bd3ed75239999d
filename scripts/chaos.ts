import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { ownRedis } from "../test/dataplane/support/redis-server.ts";
import { startTcpProxy } from "../test/dataplane/support/tcp-proxy.ts";
import { checkInvariants } from "../test/reliability/invariants.ts";
import {
  CHAOS_JWT_SECRET,
  childServiceEnv,
  httpSend,
  settleEverything,
} from "../test/reliability/support/chaos.ts";
import { buildService, childService } from "../test/reliability/support/child-service.ts";
import { createDatabase } from "../test/reliability/support/databases.ts";
import { tally, undocumentedAnswers } from "../test/reliability/support/documented.ts";
import { missingAcknowledged, runLoad } from "../test/reliability/support/load.ts";
import { freePort, startEventSink } from "../test/reliability/support/servers.ts";
import { hostPort, TEST_DATABASE_URL } from "../test/support/backends.ts";

/**
 * The long version of test/reliability/crash.test.ts and faults.test.ts (`npx tsx scripts/chaos.ts`): the service
 * bundle as a child process on a fresh database, behind a TCP proxy, with a Redis of its own, under a load of the full
 * flow for --duration seconds while, every few seconds, one fault is picked at random: kill -9 and restart, a
 * graceful restart (SIGTERM), the database cut off for a while, the service's connections killed, Redis killed and
 * restarted. Then reconciliation, and the checks of the suite: every answer documented, nothing acknowledged
 * missing, every invariant, every event delivered. Prints a summary; exits 1 if anything failed. Loopback only.
 *
 *   npx tsx scripts/chaos.ts --duration 600 --workers 8 --every 4:15
 */
const { values: args } = parseArgs({
  options: {
    duration: { type: "string", default: "300" },
    workers: { type: "string", default: "8" },
    every: { type: "string", default: "4:15" },
    keep: { type: "boolean", default: false },
  },
});
const durationMs = Number(args.duration) * 1000;
const [minGap, maxGap] = (args.every ?? "4:15").split(":").map((s) => Number(s) * 1000) as [number, number];
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const db = await createDatabase("chaos");
const proxy = await startTcpProxy(hostPort(TEST_DATABASE_URL));
const redis = await ownRedis();
await redis.start();
const sink = await startEventSink();
const bundle = await buildService();
const port = await freePort();
const env = childServiceEnv({
  port,
  databaseUrl: proxy.via(db.url),
  sink: sink.url,
  extra: {
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: `chaos-${randomBytes(3).toString("hex")}:`,
    DB_CONNECT_TIMEOUT_MS: "1000",
    DB_STATEMENT_TIMEOUT_MS: "3000",
  },
});
const service = childService(bundle.main, port, env);
log(`database ${db.name}, service on ${service.url}, ${args.workers} workers, ${args.duration} s`);
await service.start();

const faults: [string, () => Promise<void>][] = [
  [
    "kill -9",
    async () => {
      await service.kill();
      await sleep(Math.random() * 500);
      await service.start();
    },
  ],
  [
    "graceful restart",
    async () => {
      await service.stop();
      await service.start();
    },
  ],
  [
    "database cut",
    async () => {
      await proxy.cut();
      await sleep(500 + Math.random() * 3_000);
      await proxy.restore();
    },
  ],
  ["connections killed", async () => void (await db.terminateServiceConnections())],
  [
    "redis down",
    async () => {
      await redis.kill();
      await sleep(500 + Math.random() * 3_000);
      await redis.start();
    },
  ],
];
const applied: Record<string, number> = {};

let stop = false;
const started = Date.now();
const load = runLoad({
  send: httpSend(service.url, CHAOS_JWT_SECRET),
  workers: Number(args.workers),
  merchants: ["acct_chaos_a", "acct_chaos_b", "acct_chaos_c"],
  stopped: () => stop,
  faults: ["service_unavailable", "provider_unavailable", "idempotency_key_in_use"],
  retries: 3,
  maxRetryDelayMs: 500,
  pauseAfterLostMs: 100,
});
let failed = false;
try {
  while (Date.now() - started < durationMs) {
    await sleep(minGap + Math.random() * (maxGap - minGap));
    const [name, fault] = faults[Math.floor(Math.random() * faults.length)] as [string, () => Promise<void>];
    log(`fault: ${name}`);
    await fault();
    applied[name] = (applied[name] ?? 0) + 1;
    const violations = await checkInvariants(db.admin);
    if (violations.length > 0) log(`invariants (processing allowed):\n  ${violations.join("\n  ")}`);
  }
  stop = true;
  const result = await load;
  log(`load stopped: ${result.flows} flows, ${result.acknowledged.length} acknowledged, ${result.lost} lost`);

  const undocumented = undocumentedAnswers(result.answers);
  const missing = await missingAcknowledged(db.admin, result.acknowledged);
  await settleEverything(
    db.admin,
    () => fetch(`${service.url}/internal/reconcile`, { method: "POST" }),
    60_000,
  );
  const violations = await checkInvariants(db.admin, { allowProcessing: false, allowPendingRefunds: false });
  // The leases of events claimed by killed processes would run out within 30 s; moved to now instead of waited for.
  await db.admin.query("UPDATE outbox SET next_attempt_at = now() WHERE sent_at IS NULL");
  await fetch(`${service.url}/internal/outbox/drain`, { method: "POST" });
  const committed = (await db.admin.query<{ id: string }>("SELECT id FROM outbox")).rows.map((r) => r.id);
  let undelivered = committed;
  for (let i = 0; i < 120 && undelivered.length > 0; i++) {
    await sleep(500);
    const delivered = sink.ids();
    undelivered = committed.filter((id) => !delivered.has(id));
  }
  const summary = {
    seconds: Math.round((Date.now() - started) / 1000),
    faults: applied,
    flows: result.flows,
    acknowledged: result.acknowledged.length,
    lost_in_flight: result.lost,
    gave_up: result.gaveUp,
    answers: tally(result.answers.map((a) => a.answer)),
    events: committed.length,
    deliveries: sink.received.length,
    undocumented: undocumented.slice(0, 20),
    missing: missing.slice(0, 20),
    violations,
    undelivered: undelivered.slice(0, 20),
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  failed = undocumented.length + missing.length + violations.length + undelivered.length > 0;
} catch (error) {
  failed = true;
  process.stderr.write(
    `${error instanceof Error ? error.stack : String(error)}\n${service.output.join("")}\n`,
  );
} finally {
  stop = true;
  await service.stop();
  await sink.close();
  await redis.kill();
  await proxy.close();
  if (args.keep) log(`database kept: ${db.url}`);
  else await db.close();
  await bundle.remove();
}
process.exit(failed ? 1 : 0);
