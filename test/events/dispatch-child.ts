/**
 * A separate dispatcher process for the kill test (dispatcher-postgres.test.ts): drains the outbox of one
 * PostgreSQL schema to a sink until nothing is left, then exits 0. Run as `node --import tsx dispatch-child.ts`
 * (one process, so SIGKILL lands on the dispatcher itself).
 *
 * Environment: CHILD_DATABASE_URL, CHILD_SCHEMA, CHILD_SINK, CHILD_LEASE_SECONDS.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { loadConfig } from "../../lib/config/index.ts";
import { openPg } from "../../lib/db/pg.ts";
import { createOutboxDispatcher } from "../../lib/events/dispatcher.ts";
import { createLogger } from "../../lib/telemetry/logger.ts";

const env = process.env;
const db = openPg({
  ...loadConfig({ NODE_ENV: "test", DATABASE_URL: env.CHILD_DATABASE_URL }).db,
  schema: env.CHILD_SCHEMA,
});
const dispatcher = createOutboxDispatcher({
  db,
  log: createLogger("silent"),
  sink: env.CHILD_SINK ?? "",
  pollIntervalMs: 0,
  batchSize: 10,
  leaseSeconds: Number(env.CHILD_LEASE_SECONDS ?? 1),
  sendTimeoutMs: 30_000,
  retryBaseMs: 50,
});

process.stdout.write("ready\n");
for (;;) {
  const { pending } = await dispatcher.drain();
  if (pending === 0) break;
  await sleep(50);
}
await db.close();
process.exit(0);
