import type { Hono } from "hono";
import { mountThreeDSecure } from "../../../functions/webhook/three-d-secure.ts";
import type { TestService } from "../../support/harness.ts";
import { sleep } from "./http-server.ts";

/** Serves the sandbox's hosted 3-D Secure page on the test app, unless the webhook function already mounts it. */
export function withThreeDSecurePage(t: TestService): void {
  const app = t.app as unknown as Hono;
  if (!app.routes.some((r) => r.path === "/sandbox/3ds/:id")) mountThreeDSecure(app, t.service);
}

/** An order and a payment for it, with any of the payment's creation fields. */
export async function createPayment(
  t: TestService,
  fields: { amount?: number; currency?: string; merchant?: string; [key: string]: unknown } = {},
) {
  const { amount = 1999, currency = "USD", merchant, ...payment } = fields;
  const order = await t.call("POST", "/v1/orders", { merchant, body: { amount, currency } });
  if (order.status !== 201) throw new Error(`order: ${order.status} ${JSON.stringify(order.body)}`);
  const created = await t.call("POST", "/v1/payments", {
    merchant,
    body: { order_id: order.body.id, payment_method: "pm_card_visa", ...payment },
  });
  if (created.status !== 201) throw new Error(`payment: ${created.status} ${JSON.stringify(created.body)}`);
  return { order: order.body, payment: created.body };
}

export function confirm(t: TestService, id: string, body: Record<string, unknown> = {}, merchant?: string) {
  return t.call("POST", `/v1/payments/${id}/confirm`, { body, merchant });
}

/** Polls until the check returns a value (not undefined), or fails after the timeout. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(25);
  }
}

/** Audit rows and outbox events written about one object, by action and event type. */
export async function recordsOf(t: TestService, objectId: string) {
  const audit = await t.service.db.query<{ action: string; status_after: string | null }>(
    "SELECT action, status_after FROM audit_log WHERE object_id = $1 ORDER BY id",
    [objectId],
  );
  const events = await t.service.db.query<{ type: string }>(
    "SELECT type FROM outbox WHERE subject = $1 ORDER BY seq",
    [objectId],
  );
  return { audit: audit.rows, events: events.rows.map((e) => e.type) };
}
