import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orderWithPayment, startTestService, type TestService } from "../support/harness.ts";

/**
 * The events and audit rows a confirm and a capture write with their changes. Their objects are built by PostgreSQL
 * in the change's own statement (lib/payments/object-sql.ts): each must be what the API answers for the same state.
 */
let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(() => t.close());

interface OutboxRow {
  seq: number;
  type: string;
  subject: string;
  partition_key: string;
  data: Record<string, unknown>;
}

const eventsOf = async (...subjects: string[]) =>
  (
    await t.service.db.query<OutboxRow>(
      "SELECT seq::int AS seq, type, subject, partition_key, data FROM outbox WHERE subject = ANY($1) ORDER BY seq",
      [subjects],
    )
  ).rows.map((row) => ({ ...row, type: row.type.replace("io.payment-service.", "") }));

const auditOf = async (objectId: string) =>
  (
    await t.service.db.query<{
      action: string;
      status_before: string | null;
      status_after: string;
      amount: number;
    }>(
      `SELECT action, status_before, status_after, amount::int AS amount FROM audit_log
       WHERE object_id = $1 ORDER BY id`,
      [objectId],
    )
  ).rows;

describe("the events of a confirm", () => {
  it("carry the payment and the order as the API shows them, the order's after the payment's", async () => {
    const { order, payment } = await orderWithPayment(t, { amount: 2_500 });
    const confirmed = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
    expect(confirmed.body.status).toBe("succeeded");
    const events = await eventsOf(payment.id, order.id);
    expect(events.map((event) => event.type)).toEqual([
      "order.created",
      "payment.created",
      "payment.processing",
      "payment.succeeded",
      "order.paid",
    ]);
    const [created, announced, processing, succeeded, paid] = events as [
      OutboxRow,
      OutboxRow,
      OutboxRow,
      OutboxRow,
      OutboxRow,
    ];
    expect(created.data).toEqual(order);
    expect(announced.data).toEqual(payment);
    expect(succeeded.data).toEqual(confirmed.body);
    expect(succeeded.data).toEqual((await t.call("GET", `/v1/payments/${payment.id}`)).body);
    expect(paid.data).toEqual((await t.call("GET", `/v1/orders/${order.id}`)).body);
    expect(paid.data).toMatchObject({ status: "paid", amount_paid: 2_500 });
    // One partition for the payment's journey, so the order's event is delivered after the payment's.
    expect(paid.partition_key).toBe(payment.id);
    // The payment as step 1 left it: processing, its attempt begun, nothing from the provider yet.
    expect(processing.data).toEqual({
      ...payment,
      status: "processing",
      updated_at: processing.data.updated_at,
    });
    expect(Date.parse(processing.data.updated_at as string)).toBeLessThanOrEqual(
      Date.parse(succeeded.data.updated_at as string),
    );
    expect(await auditOf(payment.id)).toEqual([
      { action: "payment.create", status_before: null, status_after: "requires_confirmation", amount: 2_500 },
      {
        action: "payment.confirm",
        status_before: "requires_confirmation",
        status_after: "processing",
        amount: 2_500,
      },
      {
        action: "payment.confirm.succeeded",
        status_before: "processing",
        status_after: "succeeded",
        amount: 2_500,
      },
    ]);
    expect(await auditOf(order.id)).toEqual([
      { action: "order.create", status_before: null, status_after: "pending", amount: 2_500 },
      { action: "order.paid", status_before: "pending", status_after: "paid", amount: 2_500 },
    ]);
  });

  it("of a declined card: the payment failed with its reason, the order still pending and announced nothing", async () => {
    const { order, payment } = await orderWithPayment(t, { payment_method: "pm_card_chargeDeclined" });
    const declined = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
    expect(declined.body).toMatchObject({ status: "failed", failure: { code: "card_declined" } });
    const events = await eventsOf(payment.id, order.id);
    expect(events.map((event) => event.type)).toEqual([
      "order.created",
      "payment.created",
      "payment.processing",
      "payment.failed",
    ]);
    expect(events[3]?.data).toEqual((await t.call("GET", `/v1/payments/${payment.id}`)).body);
    expect((await t.call("GET", `/v1/orders/${order.id}`)).body.status).toBe("pending");
  });
});

describe("a confirm the provider leaves processing", () => {
  it("records nothing more, and the request stores its own answer: a retry replays the same bytes", async () => {
    const { payment } = await orderWithPayment(t, { payment_method: "pm_card_async" });
    const path = `/v1/payments/${payment.id}/confirm`;
    const first = await t.call("POST", path, { idempotencyKey: "answer-async" });
    expect(first.body.status).toBe("processing");
    const retry = await t.call("POST", path, { idempotencyKey: "answer-async" });
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(retry.text).toBe(first.text);
    expect((await eventsOf(payment.id)).map((event) => event.type)).toEqual([
      "payment.created",
      "payment.processing",
    ]);
    expect((await auditOf(payment.id)).map((row) => row.action)).toEqual([
      "payment.create",
      "payment.confirm",
    ]);
  });
});

describe("the events of a capture", () => {
  it("announce the authorization, then the capture and the order paid what was captured", async () => {
    const { order, payment } = await orderWithPayment(t, { amount: 3_000, capture_method: "manual" });
    const authorized = await t.call("POST", `/v1/payments/${payment.id}/confirm`);
    expect(authorized.body.status).toBe("requires_capture");
    const captured = await t.call("POST", `/v1/payments/${payment.id}/capture`, { body: { amount: 1_200 } });
    expect(captured.body).toMatchObject({ status: "succeeded", amount_captured: 1_200 });
    const events = await eventsOf(payment.id, order.id);
    expect(events.map((event) => event.type)).toEqual([
      "order.created",
      "payment.created",
      "payment.processing",
      "payment.requires_capture",
      "payment.processing",
      "payment.succeeded",
      "order.paid",
    ]);
    expect(events[3]?.data).toEqual(authorized.body);
    expect(events[5]?.data).toEqual(captured.body);
    expect(events[6]?.data).toEqual((await t.call("GET", `/v1/orders/${order.id}`)).body);
    expect(events[6]?.data).toMatchObject({ status: "paid", amount_paid: 1_200 });
    // A capture's audit amount is what was captured.
    expect((await auditOf(payment.id)).at(-1)).toEqual({
      action: "payment.capture.succeeded",
      status_before: "processing",
      status_after: "succeeded",
      amount: 1_200,
    });
  });
});
