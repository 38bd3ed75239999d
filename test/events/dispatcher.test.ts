import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../../lib/db/db.ts";
import { createOutboxDispatcher, type DispatcherOptions } from "../../lib/events/dispatcher.ts";
import { metrics, registry } from "../../lib/telemetry/metrics.ts";
import { orderWithPayment, startTestService, type TestService } from "../support/harness.ts";
import { accepted, startSink, TEST_ENV } from "./support.ts";

type Sink = Awaited<ReturnType<typeof startSink>>;

let t: TestService;
let sink: Sink;
let respond: (index: number) => number | Promise<number> = () => 202;
beforeAll(async () => {
  sink = await startSink((i) => respond(i));
  t = await startTestService({ env: { ...TEST_ENV, K_SINK: sink.url, OUTBOX_POLL_INTERVAL_MS: "0" } });
});
afterAll(async () => {
  await t.service.outbox?.stop();
  await t.close();
  await sink.close();
});
afterEach(async () => {
  respond = () => 202;
  await t.service.outbox?.stop();
  // Each test starts from an empty outbox.
  await t.service.db.query("UPDATE outbox SET next_attempt_at = now() WHERE sent_at IS NULL");
  await t.service.outbox?.drain();
  sink.reset();
});

interface Row {
  seq: number;
  id: string;
  type: string;
  partition_key: string;
  sent_at: Date | null;
  attempts: number;
  last_error: string | null;
}
const outboxRows = async (where = "TRUE") =>
  (
    await t.service.db.query<Row>(
      `SELECT seq, id, type, partition_key, sent_at, attempts, last_error FROM outbox WHERE ${where} ORDER BY seq`,
    )
  ).rows;

/** Some of everything: orders, payments that succeed, fail and are canceled. */
async function makeChanges(n = 3) {
  const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  for (let i = 0; i < n; i++) {
    const { payment } = await orderWithPayment(t, {
      payment_method: i % 2 ? "pm_card_chargeDeclined" : "pm_card_visa",
    });
    await t.call("POST", `/v1/payments/${payment.id}/confirm`, { headers: { traceparent } });
  }
  const { payment } = await orderWithPayment(t);
  await t.call("POST", `/v1/payments/${payment.id}/cancel`, { body: { reason: "abandoned" } });
  return traceparent;
}

/** Every partition's events reached the sink in outbox order; `received` may hold repeats (at least once). */
function expectOrderedPerPartition(ids: { id: string; partition: string }[], rows: Row[]) {
  const seqOf = new Map(rows.map((r) => [r.id, r.seq]));
  const byPartition = new Map<string, number[]>();
  for (const { id, partition } of ids) {
    const seq = seqOf.get(id);
    if (seq === undefined) continue;
    const seen = byPartition.get(partition) ?? [];
    if (!seen.includes(seq)) seen.push(seq);
    byPartition.set(partition, seen);
  }
  for (const seqs of byPartition.values()) expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
}

function dispatcher(options: Partial<DispatcherOptions> = {}) {
  return createOutboxDispatcher({
    db: t.service.db,
    log: t.service.log,
    sink: sink.url,
    pollIntervalMs: 0,
    retryBaseMs: 20,
    retryMaxMs: 200,
    ...options,
  });
}

/** Drains until nothing is left (failed events come due again after their backoff), within a bound. */
async function drainAll(d: { drain: () => Promise<{ pending: number }> }, rounds = 200) {
  for (let i = 0; i < rounds; i++) {
    const { pending } = await d.drain();
    if (pending === 0) return;
    await sleep(20);
  }
  throw new Error("outbox still not empty");
}

describe("outbox dispatcher", () => {
  it("sends every committed change once, in binary mode with its extensions, in order per partition", async () => {
    const traceparent = await makeChanges();
    const rows = await outboxRows("sent_at IS NULL");
    expect(rows.length).toBeGreaterThan(10);
    const delivered = await counterValue(metrics.outboxDelivered);

    const result = await t.service.outbox?.drain();

    expect(result).toMatchObject({ sent: rows.length, failed: 0, pending: 0 });
    const ids = accepted(sink.received);
    expect(ids.map((r) => r.id).sort()).toEqual(rows.map((r) => r.id).sort());
    expectOrderedPerPartition(ids, rows);
    expect(await outboxRows("sent_at IS NULL")).toEqual([]);
    expect(await counterValue(metrics.outboxDelivered)).toBe(delivered + rows.length);

    const succeeded = sink.received.find(
      (r) => r.headers["ce-type"] === "io.payment-service.payment.succeeded",
    );
    const data = JSON.parse(succeeded?.body ?? "{}");
    expect(succeeded?.headers).toMatchObject({
      "ce-specversion": "1.0",
      "ce-source": "/payment-service/confirm",
      "ce-subject": data.id,
      "ce-merchantid": "acct_test",
      "ce-partitionkey": data.id,
      "ce-traceparent": traceparent,
      "content-type": "application/json",
    });
    expect(succeeded?.headers["ce-id"]).toMatch(/^evt_[0-9a-f]{32}$/);
    expect(data).toMatchObject({ object: "payment", status: "succeeded" });
  });

  it("holds a partition back while its oldest event fails, retries with backoff, and loses nothing", async () => {
    await makeChanges();
    const rows = await outboxRows("sent_at IS NULL");
    respond = (i) => (i < 7 ? 500 : 202); // the sink is down for the first 7 requests
    const failures = await counterValue(metrics.outboxDeliveryFailures);

    await drainAll(dispatcher());

    const ids = accepted(sink.received);
    expect(new Set(ids.map((r) => r.id)).size).toBe(ids.length);
    expect(ids.map((r) => r.id).sort()).toEqual(rows.map((r) => r.id).sort());
    expectOrderedPerPartition(ids, rows);
    // Order holds over every attempt, failed ones included: nothing of a partition went out before its elder.
    expectOrderedPerPartition(
      sink.received.map((r) => ({
        id: String(r.headers["ce-id"]),
        partition: String(r.headers["ce-partitionkey"]),
      })),
      rows,
    );
    const after = await outboxRows(`id IN (${rows.map((r) => `'${r.id}'`).join(",")})`);
    expect(after.every((r) => r.sent_at !== null && r.last_error === null)).toBe(true);
    // Every failed request was one extra attempt of some event.
    expect(after.reduce((extra, r) => extra + r.attempts - 1, 0)).toBe(7);
    expect(await counterValue(metrics.outboxDeliveryFailures)).toBe(failures + 7);
  });

  it("sends nothing of a partition while its oldest event is unsent", async () => {
    await makeChanges(2);
    const rows = await outboxRows("sent_at IS NULL");
    const heads = [...new Map([...rows].reverse().map((r) => [r.partition_key, r.id])).values()].sort();
    respond = () => 500;

    await dispatcher({ retryBaseMs: 60_000 }).drain();

    expect(sink.received.map((r) => String(r.headers["ce-id"])).sort()).toEqual(heads);
    expect(heads.length).toBeLessThan(rows.length);
    await t.service.db.query("UPDATE outbox SET next_attempt_at = now() WHERE sent_at IS NULL");
  });

  it("records the failure and schedules the retry with exponential backoff", async () => {
    await orderWithPayment(t);
    const [row] = await outboxRows("sent_at IS NULL");
    respond = () => 503;
    const d = dispatcher({ retryBaseMs: 60_000, retryMaxMs: 600_000 });

    await d.drain();
    const first = await t.service.db.query<{ attempts: number; last_error: string; wait: number }>(
      "SELECT attempts, last_error, EXTRACT(EPOCH FROM next_attempt_at - now())::float8 AS wait FROM outbox WHERE id = $1",
      [row?.id],
    );
    expect(first.rows[0]).toMatchObject({ attempts: 1, last_error: "sink answered 503" });
    expect(first.rows[0]?.wait).toBeGreaterThan(50);
    expect(first.rows[0]?.wait).toBeLessThanOrEqual(60);

    await t.service.db.query("UPDATE outbox SET next_attempt_at = now() WHERE id = $1", [row?.id]);
    await d.drain();
    const second = await t.service.db.query<{ attempts: number; wait: number }>(
      "SELECT attempts, EXTRACT(EPOCH FROM next_attempt_at - now())::float8 AS wait FROM outbox WHERE id = $1",
      [row?.id],
    );
    expect(second.rows[0]?.attempts).toBe(2);
    expect(second.rows[0]?.wait).toBeGreaterThan(110);
    await t.service.db.query("UPDATE outbox SET next_attempt_at = now() WHERE sent_at IS NULL");
  });

  it("sends a batch again when marking it sent fails (at least once), and every event still arrives", async () => {
    await makeChanges(2);
    const rows = await outboxRows("sent_at IS NULL");
    let failMark = true;
    const flaky: Db = {
      ...t.service.db,
      query: (sql, params) => {
        if (failMark && sql.includes("SET sent_at = now()")) {
          failMark = false;
          return Promise.reject(new Error("connection lost while marking"));
        }
        return t.service.db.query(sql, params);
      },
    };
    const d = dispatcher({ db: flaky, leaseSeconds: 0.2 });

    await expect(d.drain()).rejects.toThrow("connection lost");
    const firstBatch = accepted(sink.received).map((r) => r.id);
    expect(firstBatch.length).toBeGreaterThan(0);
    expect((await outboxRows("sent_at IS NULL")).length).toBe(rows.length); // nothing was marked
    await sleep(250); // the claim's lease runs out
    await drainAll(d);

    const ids = accepted(sink.received).map((r) => r.id);
    expect([...new Set(ids)].sort()).toEqual(rows.map((r) => r.id).sort());
    for (const id of firstBatch) expect(ids.filter((x) => x === id)).toHaveLength(2);
    expectOrderedPerPartition(accepted(sink.received), rows);
  });

  it("adds K_CE_OVERRIDES extensions to every event", async () => {
    await orderWithPayment(t);
    await dispatcher({ ceOverrides: '{"extensions":{"cluster":"eu1"}}' }).drain();
    expect(sink.received.length).toBeGreaterThan(0);
    for (const r of sink.received) expect(r.headers["ce-cluster"]).toBe("eu1");
  });

  it("wakes after each commit once started", async () => {
    t.service.outbox?.start();
    const before = sink.received.length;
    const { order } = await orderWithPayment(t);
    for (let i = 0; i < 250 && !sink.received.some((r) => r.headers["ce-subject"] === order.id); i++)
      await sleep(20);
    expect(sink.received.slice(before).map((r) => r.headers["ce-subject"])).toContain(order.id);
  });

  it("reports the oldest unsent event's age as outbox_lag_seconds and on /ready", async () => {
    await orderWithPayment(t);
    await t.service.db.query(
      "UPDATE outbox SET created_at = now() - interval '10 minutes', next_attempt_at = now() + interval '1 hour' WHERE seq = (SELECT min(seq) FROM outbox WHERE sent_at IS NULL)",
    );
    const ready = await t.app.request("/ready");
    expect((await ready.json()).checks.outbox).toBe("degraded");
    const text = await (await t.app.request("/metrics")).text();
    const lag = Number(/^outbox_lag_seconds (\S+)$/m.exec(text)?.[1]);
    expect(lag).toBeGreaterThanOrEqual(600);

    await t.service.db.query("UPDATE outbox SET next_attempt_at = now() WHERE sent_at IS NULL");
    await t.service.outbox?.drain();
    expect((await (await t.app.request("/ready")).json()).checks.outbox).toBe("ok");
    expect((await registry.getSingleMetricAsString("outbox_lag_seconds")).trim().split("\n").pop()).toBe(
      "outbox_lag_seconds 0",
    );
  });
});

describe("internal outbox endpoints", () => {
  it("POST /internal/outbox/drain sends what is due and reports it", async () => {
    await orderWithPayment(t);
    const res = await t.app.request("/internal/outbox/drain", { method: "POST" });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.outbox).toMatchObject({ failed: 0, pending: 0 });
    expect(body.outbox.sent).toBeGreaterThanOrEqual(2);
    expect(body.notifications).toMatchObject({ applied: 0, pending: 0 });
  });

  it("GET /internal/outbox lists the newest events without their data", async () => {
    const { payment } = await orderWithPayment(t);
    const res = await t.app.request("/internal/outbox?limit=2");
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.data).toHaveLength(2);
    expect(body.data[0]).toEqual({
      id: expect.stringMatching(/^evt_/),
      type: "io.payment-service.payment.created",
      subject: payment.id,
      partition_key: payment.id,
      created_at: expect.any(String),
      sent_at: null,
      attempts: 0,
      last_error: null,
    });

    const bad = await t.app.request("/internal/outbox?limit=500");
    expect(bad.status).toBe(400);
    expect((await bad.json()).errors[0].path).toBe("query.limit");
  });
});

describe("without K_SINK", () => {
  it("keeps events in the outbox and says so on drain", async () => {
    const local = await startTestService({ env: TEST_ENV });
    try {
      expect(local.service.outbox).toBeUndefined();
      await orderWithPayment(local);
      const res = await local.app.request("/internal/outbox/drain", { method: "POST" });
      expect((await res.json()).outbox).toEqual({ skipped: "no K_SINK configured" });
      const unsent = await local.service.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL",
      );
      expect(unsent.rows[0]?.n).toBeGreaterThanOrEqual(2);
    } finally {
      await local.close();
    }
  });
});

async function counterValue(metric: { get(): Promise<{ values: { value: number }[] }> }) {
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}
