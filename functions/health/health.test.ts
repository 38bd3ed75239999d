import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orderWithPayment, startTestService, type TestService } from "../../test/support/harness.ts";

let t: TestService;
beforeAll(async () => {
  t = await startTestService({ env: { RECONCILE_AFTER_SECONDS: "1" } });
});
afterAll(() => t.close());

describe("health function", () => {
  it("answers liveness and readiness with its checks", async () => {
    expect((await t.call("GET", "/health", { token: null })).body).toEqual({ status: "ok" });
    const ready = await t.call("GET", "/ready", { token: null });
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toMatchObject({ database: "ok", cache: "ok" });
  });

  it("POST /internal/reconcile settles a payment whose provider answer was lost", async () => {
    const { payment } = await orderWithPayment(t, { payment_method: "pm_card_providerTimeout" });
    expect((await t.call("POST", `/v1/payments/${payment.id}/confirm`)).body.status).toBe("processing");
    await t.service.db.query(
      "UPDATE payments SET processing_since = now() - interval '1 minute' WHERE id = $1",
      [payment.id],
    );
    const res = await t.call("POST", "/internal/reconcile", { token: null });
    expect(res.status).toBe(200);
    // The retention pass runs with it; nothing here is old enough yet.
    expect(res.body.pruned).toEqual({ outbox: 0, idempotency_keys: 0, provider_events: 0 });
    expect((await t.call("GET", `/v1/payments/${payment.id}`)).body.status).toBe("succeeded");
    // A second pass finds nothing left to do, and the ledger shows one charge.
    await t.call("POST", "/internal/reconcile", { token: null });
    const charges = await t.service.db.query(
      "SELECT 1 FROM sandbox_charges WHERE payment_id = $1 AND operation = 'authorize'",
      [payment.id],
    );
    expect(charges.rowCount).toBe(1);
  });
});
