import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createOutboxDispatcher } from "../../lib/events/dispatcher.ts";
import { type BackendDb, openBackendDb, postgresSkipReason, TEST_DATABASE_URL } from "../support/backends.ts";
import { orderWithPayment, startTestService, type TestService } from "../support/harness.ts";
import { accepted, startSink, TEST_ENV } from "./support.ts";

const skip = await postgresSkipReason();
const CHILD = fileURLToPath(new URL("./dispatch-child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

let db: BackendDb;
let t: TestService;
let sink: Awaited<ReturnType<typeof startSink>>;
let respond: (index: number, id: string) => number | Promise<number> = () => 202;

beforeAll(async () => {
  if (skip) return;
  sink = await startSink((i, request) => respond(i, String(request.headers["ce-id"])));
  db = await openBackendDb("pg");
  t = await startTestService({ db, env: { ...TEST_ENV, K_SINK: sink.url, OUTBOX_POLL_INTERVAL_MS: "0" } });
});
afterAll(async () => {
  if (skip) return;
  await t.close(); // drops the schema
  await sink.close();
});
beforeEach(async () => {
  if (skip) return;
  // Earlier tests' events are out of the way: each test looks at the events it made.
  await db.query("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL");
  respond = () => 202;
  sink.reset();
});

async function makeChanges(payments: number) {
  for (let i = 0; i < payments; i++) {
    const { payment } = await orderWithPayment(t, {
      payment_method: i % 3 === 2 ? "pm_card_expired" : "pm_card_visa",
    });
    await t.call("POST", `/v1/payments/${payment.id}/confirm`);
  }
  return (
    await db.query<{ seq: number; id: string; partition_key: string }>(
      "SELECT seq, id, partition_key FROM outbox WHERE sent_at IS NULL ORDER BY seq",
    )
  ).rows;
}

function expectOrderedPerPartition(
  ids: { id: string; partition: string }[],
  rows: { seq: number; id: string }[],
) {
  const seqOf = new Map(rows.map((r) => [r.id, r.seq]));
  const firsts = new Map<string, number[]>();
  for (const { id, partition } of ids) {
    const seq = seqOf.get(id) as number;
    const seen = firsts.get(partition) ?? [];
    if (!seen.includes(seq)) seen.push(seq);
    firsts.set(partition, seen);
  }
  for (const seqs of firsts.values()) expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
}

describe.skipIf(skip)("outbox dispatcher on PostgreSQL", () => {
  it("shares the work between concurrent dispatchers without sending an event twice or out of order", async () => {
    const rows = await makeChanges(6);
    respond = async () => {
      await sleep(10 + Math.random() * 20); // a sink that takes a moment: the dispatchers' claims interleave
      return 202;
    };
    const dispatchers = [1, 2, 3].map(() =>
      createOutboxDispatcher({
        db: t.service.db,
        log: t.service.log,
        sink: sink.url,
        pollIntervalMs: 0,
        batchSize: 4,
      }),
    );

    const results = await Promise.all(dispatchers.map((d) => d.drain()));

    const ids = accepted(sink.received);
    expect(ids.map((r) => r.id).sort()).toEqual(rows.map((r) => r.id).sort());
    expectOrderedPerPartition(ids, rows);
    // Together they sent each event once. How the work split between them depends on scheduling (on a loaded
    // machine one dispatcher may take it all), so the split itself is not asserted.
    expect(results.reduce((n, r) => n + r.sent, 0)).toBe(rows.length);
  });

  it("delivers every event after the dispatcher process is killed between sending and marking", async () => {
    const rows = await makeChanges(4);
    const arrivals: string[] = [];
    let hold = true;
    // The first three requests are accepted; the rest of that batch never gets an answer, so the process is still
    // waiting to mark the batch sent when it is killed.
    respond = (i, id) => {
      arrivals.push(id);
      return hold && i >= 3 ? new Promise<number>(() => {}) : 202;
    };

    const first = runChild();
    for (let i = 0; i < 500 && arrivals.length < 4; i++) await sleep(20);
    expect(arrivals.length).toBeGreaterThanOrEqual(4);
    first.kill("SIGKILL");
    expect(await exited(first)).toBe("SIGKILL");

    const sentBeforeKill = accepted(sink.received).map((r) => r.id);
    expect(sentBeforeKill).toHaveLength(3);
    const marked = await db.query("SELECT id FROM outbox WHERE id = ANY($1) AND sent_at IS NOT NULL", [
      sentBeforeKill,
    ]);
    expect(marked.rows).toEqual([]); // sent, not marked: the window the kill was aimed at

    hold = false;
    const second = runChild();
    expect(await exited(second)).toBe(0);

    const ids = accepted(sink.received);
    expect([...new Set(ids.map((r) => r.id))].sort()).toEqual(rows.map((r) => r.id).sort());
    for (const id of sentBeforeKill) expect(ids.filter((r) => r.id === id)).toHaveLength(2); // at least once
    expectOrderedPerPartition(ids, rows);
    const unsent = await db.query("SELECT id FROM outbox WHERE sent_at IS NULL");
    expect(unsent.rows).toEqual([]);
  });
});

function runChild(): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD], {
    cwd: ROOT,
    env: {
      ...process.env,
      CHILD_DATABASE_URL: TEST_DATABASE_URL,
      CHILD_SCHEMA: db.schema,
      CHILD_SINK: sink.url,
      CHILD_LEASE_SECONDS: "1",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr?.on("data", (chunk: Buffer) => process.stderr.write(chunk));
  return child;
}

function exited(child: ChildProcess, timeoutMs = 30_000): Promise<number | NodeJS.Signals | null> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("dispatcher process did not finish"));
    }, timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(signal ?? code);
    });
  });
}
