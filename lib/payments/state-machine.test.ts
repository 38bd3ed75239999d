import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orderWithPayment, startTestService, type TestService } from "../../test/support/harness.ts";
import {
  canTransition,
  OPERATION_FROM,
  PAYMENT_STATUSES,
  type PaymentStatus,
  TERMINAL_PAYMENT_STATUSES,
} from "./state-machine.ts";

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(() => t.close());

/** Brings a fresh payment into the given status through the public API only. */
async function paymentIn(status: PaymentStatus): Promise<string> {
  const method: Record<PaymentStatus, string> = {
    requires_confirmation: "pm_card_visa",
    processing: "pm_card_providerTimeout",
    requires_action: "pm_card_threeDSecureRequired",
    requires_capture: "pm_card_visa",
    succeeded: "pm_card_visa",
    failed: "pm_card_chargeDeclined",
    canceled: "pm_card_visa",
  };
  const { payment } = await orderWithPayment(t, {
    payment_method: method[status],
    capture_method: status === "requires_capture" ? "manual" : undefined,
  });
  if (status === "canceled") await t.call("POST", `/v1/payments/${payment.id}/cancel`);
  else if (status !== "requires_confirmation") await t.call("POST", `/v1/payments/${payment.id}/confirm`);
  const now = await t.call("GET", `/v1/payments/${payment.id}`);
  expect(now.body.status).toBe(status);
  return payment.id;
}

const operations = ["confirm", "capture", "cancel"] as const;
const expectedAfter: Record<(typeof operations)[number], PaymentStatus> = {
  confirm: "succeeded",
  capture: "succeeded",
  cancel: "canceled",
};

describe("every (status, operation) pair through the API", () => {
  const pairs = PAYMENT_STATUSES.flatMap((status) => operations.map((op) => [status, op] as const));
  it.each(pairs)("%s + %s", async (status, operation) => {
    const id = await paymentIn(status);
    const res = await t.call("POST", `/v1/payments/${id}/${operation}`);
    const after = await t.call("GET", `/v1/payments/${id}`);
    if (OPERATION_FROM[operation].includes(status)) {
      expect(res.status).toBe(200);
      expect(res.body.status).toBe(expectedAfter[operation]);
      expect(after.body.status).toBe(expectedAfter[operation]);
    } else {
      expect(res.status).toBe(409);
      expect(res.body.code).toBe("invalid_state");
      expect(after.body.status).toBe(status); // an illegal operation changes nothing
    }
  });
});

describe("the database enforces the state machine", () => {
  it.each(
    TERMINAL_PAYMENT_STATUSES.flatMap((from) =>
      PAYMENT_STATUSES.filter((to) => to !== from).map((to) => [from, to]),
    ),
  )("a %s payment cannot become %s, even by direct SQL", async (from, to) => {
    const id = await paymentIn(from as PaymentStatus);
    await expect(
      t.service.db.query("UPDATE payments SET status = $2 WHERE id = $1", [id, to]),
    ).rejects.toThrow(/cannot move/);
  });

  it("agrees with the table in code", () => {
    expect(canTransition("requires_confirmation", "processing")).toBe(true);
    expect(canTransition("succeeded", "failed")).toBe(false);
    for (const terminal of TERMINAL_PAYMENT_STATUSES) {
      for (const to of PAYMENT_STATUSES) expect(canTransition(terminal, to)).toBe(false);
    }
  });

  it("allows one succeeded or in-flight payment per order", async () => {
    const { order, payment } = await orderWithPayment(t);
    const second = await t.call("POST", "/v1/payments", {
      body: { order_id: order.id, payment_method: "pm_card_visa" },
    });
    await t.call("POST", `/v1/payments/${payment.id}/confirm`);
    expect((await t.call("POST", `/v1/payments/${second.body.id}/confirm`)).status).toBe(409);
    await expect(
      t.service.db.query("UPDATE payments SET status = 'processing' WHERE id = $1", [second.body.id]),
    ).rejects.toThrow(/payments_one_active_per_order/);
  });
});
