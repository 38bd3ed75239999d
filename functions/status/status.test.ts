import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orderWithPayment, startTestService, type TestService } from "../../test/support/harness.ts";

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(() => t.close());

describe("GET /v1/orders/:id and /v1/payments/:id", () => {
  it("returns the objects; unknown or malformed ids are 404", async () => {
    const { order, payment } = await orderWithPayment(t);
    expect((await t.call("GET", `/v1/orders/${order.id}`)).body).toEqual(order);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body).toEqual(payment);
    for (const path of ["/v1/orders/ord_nope", `/v1/payments/${order.id}`, "/v1/payments/..%2F..%2Fetc"]) {
      const res = await t.call("GET", path);
      expect(res.status).toBe(404);
      expect(res.body.code).toBe("not_found");
    }
  });

  it("never serves a cached state older than a committed change", async () => {
    const { payment } = await orderWithPayment(t);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("requires_confirmation");
    await t.call("POST", `/v1/payments/${payment.id}/confirm`);
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("succeeded");
  });
});

describe("a burst of reads of one uncached payment", () => {
  it("reads the database twice at most, and every reader gets the payment", async () => {
    const { payment } = await orderWithPayment(t);
    // A change empties the key (its marker), so the next reads miss.
    await t.call("POST", `/v1/payments/${payment.id}/cancel`, { body: { reason: "abandoned" } });
    const reads: string[] = [];
    const db = t.service.db;
    const query = db.query.bind(db);
    db.query = ((sql: string, values?: unknown[]) => {
      if (sql.includes("FROM payments") && values?.[0] === payment.id) reads.push(sql);
      return query(sql, values as never);
    }) as typeof db.query;
    try {
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => t.call("GET", `/v1/payments/${payment.id}`)),
      );
      expect(new Set(answers.map((answer) => answer.body.status))).toEqual(new Set(["canceled"]));
      expect(reads.length).toBeGreaterThan(0);
      expect(reads.length).toBeLessThanOrEqual(2);
    } finally {
      db.query = query;
    }
  });
});

describe("lists", () => {
  it("filters payments by order and status", async () => {
    const { order, payment } = await orderWithPayment(t);
    await t.call("POST", `/v1/payments/${payment.id}/confirm`);
    const byOrder = await t.call("GET", `/v1/payments?order_id=${order.id}`);
    expect(byOrder.body.data.map((p: { id: string }) => p.id)).toEqual([payment.id]);
    const succeeded = await t.call("GET", "/v1/payments?status=succeeded&limit=100");
    expect(succeeded.body.data.every((p: { status: string }) => p.status === "succeeded")).toBe(true);
  });

  it.each([
    ["limit=0", "query.limit"],
    ["limit=101", "query.limit"],
    ["limit=abc", "query.limit"],
    ["status=paid-ish", "query.status"],
    ["starting_after=x", "query.starting_after"],
    ["foo=1", "query.foo"],
  ])("rejects ?%s naming %s", async (qs, path) => {
    const res = await t.call("GET", `/v1/orders?${qs}`);
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
  });

  it("rejects starting_after with ending_before", async () => {
    const id = `ord_${"1".repeat(32)}`;
    const res = await t.call("GET", `/v1/orders?starting_after=${id}&ending_before=${id}`);
    expect(res.status).toBe(400);
  });
});

describe("keyset pagination over 250 orders", () => {
  it("walks forward and back with no gap and no duplicate", async () => {
    const merchant = "acct_pages";
    const created: string[] = [];
    for (let i = 0; i < 250; i++) {
      const res = await t.call("POST", "/v1/orders", { merchant, body: { amount: i + 1, currency: "USD" } });
      created.push(res.body.id);
    }
    const newestFirst = [...created].reverse();

    const forward: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const res = await t.call("GET", `/v1/orders?limit=40${cursor ? `&starting_after=${cursor}` : ""}`, {
        merchant,
      });
      forward.push(...res.body.data.map((o: { id: string }) => o.id));
      pages++;
      if (!res.body.has_more) break;
      cursor = forward.at(-1);
    }
    expect(pages).toBe(7);
    expect(forward).toEqual(newestFirst);

    const backward: string[] = [];
    cursor = forward.at(-1);
    backward.unshift(cursor as string);
    for (;;) {
      const res = await t.call("GET", `/v1/orders?limit=40&ending_before=${cursor}`, { merchant });
      const ids = res.body.data.map((o: { id: string }) => o.id);
      backward.unshift(...ids);
      if (!res.body.has_more) break;
      cursor = ids[0];
    }
    expect(backward).toEqual(newestFirst);
  });
});
