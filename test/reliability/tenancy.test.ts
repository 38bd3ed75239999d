import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openBackendDb, postgresSkipReason } from "../support/backends.ts";
import {
  orderWithPayment,
  startTestService,
  type TestResponse,
  type TestService,
} from "../support/harness.ts";
import { distinguishable, median } from "./support/timing.ts";

/**
 * Another merchant's objects are answered exactly as objects that do not exist — on every endpoint, in list filters
 * and cursors, for Idempotency-Keys — and in the same time, in bulk. Beyond test/api/tenancy.test.ts: refunds, list
 * cursors, keys reused with a different body, and timing. On the real PostgreSQL when it is here: that is where an
 * index lookup that finds a row behaves differently from one that finds none.
 */
const pgSkip = await postgresSkipReason();

let t: TestService;
let alice: { order: string; payment: string; refund: string; held: string; heldOrder: string };
const MALLORY = "acct_mallory";

/** An id of the same kind and creation time as `id` (UUIDv7: the time is in front) that names nothing. */
const twin = (id: string) => `${id.slice(0, -8)}${randomBytes(4).toString("hex")}`;

beforeAll(async () => {
  t = await startTestService(pgSkip ? {} : { db: await openBackendDb("pg") });
  const paid = await orderWithPayment(t, { merchant: "acct_alice", amount: 5_000 });
  await t.call("POST", `/v1/payments/${paid.payment.id}/confirm`, { merchant: "acct_alice" });
  const refund = await t.call("POST", "/v1/refunds", {
    merchant: "acct_alice",
    body: { payment_id: paid.payment.id, amount: 100 },
  });
  const held = await orderWithPayment(t, { merchant: "acct_alice", capture_method: "manual" });
  await t.call("POST", `/v1/payments/${held.payment.id}/confirm`, { merchant: "acct_alice" });
  alice = {
    order: paid.order.id,
    payment: paid.payment.id,
    refund: refund.body.id,
    held: held.payment.id,
    heldOrder: held.order.id,
  };
  // Mallory has objects of her own, so her lists are not trivially empty.
  for (let i = 0; i < 3; i++) await orderWithPayment(t, { merchant: MALLORY });
});
afterAll(() => t?.close());

const withoutRequestId = (res: TestResponse) => {
  const { request_id: _, ...rest } = res.body ?? {};
  return { status: res.status, body: rest, retryAfter: res.headers.get("retry-after") };
};

describe("another merchant's ids", () => {
  it("every endpoint answers them exactly as ids that do not exist", async () => {
    const requests: [
      string,
      (id: Record<keyof typeof alice, string>) => string,
      ((ids: typeof alice) => unknown)?,
    ][] = [
      ["GET", (a) => `/v1/orders/${a.order}`],
      ["GET", (a) => `/v1/payments/${a.payment}`],
      ["GET", (a) => `/v1/refunds/${a.refund}`],
      ["POST", (a) => `/v1/payments/${a.held}/confirm`],
      ["POST", (a) => `/v1/payments/${a.held}/capture`],
      ["POST", (a) => `/v1/payments/${a.held}/cancel`],
      ["POST", (a) => `/v1/orders/${a.heldOrder}/cancel`],
      ["POST", () => "/v1/payments", (a) => ({ order_id: a.heldOrder, payment_method: "pm_card_visa" })],
      ["POST", () => "/v1/refunds", (a) => ({ payment_id: a.payment, amount: 1 })],
      ["POST", () => "/v1/refunds", (a) => ({ payment_id: a.payment })],
    ];
    const missing = Object.fromEntries(Object.entries(alice).map(([k, v]) => [k, twin(v)])) as typeof alice;
    for (const [method, path, body] of requests) {
      const theirs = await t.call(method, path(alice), { merchant: MALLORY, body: body?.(alice) });
      const none = await t.call(method, path(missing), { merchant: MALLORY, body: body?.(missing) });
      expect(theirs.status, `${method} ${path(alice)}`).toBe(404);
      expect(withoutRequestId(theirs), `${method} ${path(alice)}`).toEqual(withoutRequestId(none));
    }
    // Nothing of Alice's moved.
    const held = await t.call("GET", `/v1/payments/${alice.held}`, { merchant: "acct_alice" });
    expect(held.body).toMatchObject({ status: "requires_capture", amount_capturable: 1_999 });
    const paid = await t.call("GET", `/v1/payments/${alice.payment}`, { merchant: "acct_alice" });
    expect(paid.body.amount_refunded).toBe(100);
  });

  it("list filters and cursors naming them return what a missing id of the same age would", async () => {
    for (const path of [
      (id: typeof alice) => `/v1/payments?order_id=${id.order}`,
      (id: typeof alice) => `/v1/payments?order_id=${id.order}&status=succeeded`,
      (id: typeof alice) => `/v1/orders?starting_after=${id.order}`,
      (id: typeof alice) => `/v1/orders?ending_before=${id.order}`,
      (id: typeof alice) => `/v1/payments?starting_after=${id.payment}&limit=100`,
      (id: typeof alice) => `/v1/payments?ending_before=${id.held}`,
    ]) {
      const missing = Object.fromEntries(Object.entries(alice).map(([k, v]) => [k, twin(v)])) as typeof alice;
      const theirs = await t.call("GET", path(alice), { merchant: MALLORY });
      const none = await t.call("GET", path(missing), { merchant: MALLORY });
      expect(theirs.status).toBe(200);
      expect(theirs.body).toEqual(none.body);
      const leaked = JSON.stringify(theirs.body);
      for (const id of Object.values(alice)) expect(leaked).not.toContain(id);
    }
  });

  it("an Idempotency-Key of another merchant is not there: same body runs anew, another body is no 422", async () => {
    const key = `shared-${randomBytes(4).toString("hex")}`;
    const body = { amount: 2_500, currency: "GBP" };
    const first = await t.call("POST", "/v1/orders", { merchant: "acct_alice", body, idempotencyKey: key });
    const same = await t.call("POST", "/v1/orders", { merchant: MALLORY, body, idempotencyKey: key });
    const other = await t.call("POST", "/v1/orders", {
      merchant: "acct_eve",
      body: { amount: 1, currency: "USD" },
      idempotencyKey: key,
    });
    expect([first.status, same.status, other.status]).toEqual([201, 201, 201]);
    // A replay or a 422 would tell Mallory that someone used this key, and for what.
    expect(same.headers.get("idempotent-replayed")).toBeNull();
    expect(same.body.id).not.toBe(first.body.id);
    expect(other.body.amount).toBe(1);
  });
});

describe("timing of the answers to another merchant's ids", () => {
  /**
   * 200 requests for Alice's object and 200 for a missing id, interleaved in random order so that whatever else
   * the machine does hits both alike, after a warm-up. What matters is a difference of kind — a second query, a
   * row loaded and compared in code, a cache filled, a provider asked — which costs at least a database round
   * trip. The bound and the numbers behind it are in support/timing.ts.
   */
  const SAMPLES = 200;

  async function compare(method: string, theirsPath: string, missingPath: string, body?: unknown) {
    const theirs: number[] = [];
    const missing: number[] = [];
    const once = async (path: string, into?: number[]) => {
      const started = performance.now();
      const res = await t.call(method, path, { merchant: MALLORY, body });
      into?.push(performance.now() - started);
      expect(res.status).toBe(404);
    };
    for (let i = 0; i < 20; i++) await once(i % 2 ? theirsPath : missingPath);
    for (let i = 0; i < SAMPLES; i++) {
      if (Math.random() < 0.5) {
        await once(theirsPath, theirs);
        await once(missingPath, missing);
      } else {
        await once(missingPath, missing);
        await once(theirsPath, theirs);
      }
    }
    return { theirs, missing };
  }

  it.each([
    ["GET", "/v1/payments/:id", (id: typeof alice) => `/v1/payments/${id.payment}`],
    ["GET", "/v1/orders/:id", (id: typeof alice) => `/v1/orders/${id.order}`],
    ["GET", "/v1/refunds/:id", (id: typeof alice) => `/v1/refunds/${id.refund}`],
    ["POST", "/v1/payments/:id/confirm", (id: typeof alice) => `/v1/payments/${id.held}/confirm`],
    ["POST", "/v1/payments/:id/cancel", (id: typeof alice) => `/v1/payments/${id.held}/cancel`],
  ])(
    "%s %s: not distinguishable from a missing id",
    // A statistical check on a shared 2-core machine: a burst of other work can skew one sample set. A real
    // difference (an extra round trip for someone else's id) shows on every attempt; noise does not.
    { retry: 2 },
    async (method, _route, path) => {
      const missing = Object.fromEntries(Object.entries(alice).map(([k, v]) => [k, twin(v)])) as typeof alice;
      const samples = await compare(method, path(alice), path(missing), method === "POST" ? {} : undefined);
      const verdict = distinguishable(samples.theirs, samples.missing);
      expect(verdict.distinguishable, verdict.summary).toBe(false);
    },
  );

  it("the check itself tells a difference of one database round trip apart (so it can fail)", async () => {
    const base = Array.from({ length: SAMPLES }, () => 2 + Math.random());
    expect(
      distinguishable(
        base,
        base.map((x) => x + 0.02),
      ).distinguishable,
    ).toBe(false);
    expect(
      distinguishable(
        base,
        base.map((x) => x + 1.5),
      ).distinguishable,
    ).toBe(true);
    expect(median([3, 1, 2])).toBe(2);
  });
});
