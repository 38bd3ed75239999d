/**
 * /metrics against the metric contract that the alert rules and the dashboard query (test/observability): after the
 * service has run every flow a user can start, every exported series exists with the contract's type and labels,
 * and the four payment metrics of the deployment guide move by exactly what the flows did.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PaymentProvider, ProviderName, WebhookVerifier } from "../../lib/providers/provider.ts";
import { initializeMetrics } from "../../lib/telemetry/baseline.ts";
import {
  postSandboxWebhook,
  processingPayment,
  sandboxEventId,
  sandboxHeaders,
  sandboxNotificationBody,
  startSink,
  TEST_ENV,
  withProviders,
} from "../events/support.ts";
import {
  contractFor,
  EXPORTED_METRICS,
  METRIC_CONTRACT,
  SCRAPE_LABELS,
} from "../observability/exported-metrics.ts";
import { orderWithPayment, startTestService, type TestService } from "../support/harness.ts";
import { type Exposition, parseExposition, sampleNames, sampleValue } from "./exposition.ts";

let t: TestService;
let sink: Awaited<ReturnType<typeof startSink>>;

beforeAll(async () => {
  sink = await startSink();
  t = await startTestService({ env: { ...TEST_ENV, K_SINK: sink.url, OUTBOX_POLL_INTERVAL_MS: "0" } });
  // What lib/runtime/server.ts does at start-up.
  initializeMetrics(t.service.providers);
});
afterAll(async () => {
  await t.service.outbox?.stop();
  await t.close();
  await sink.close();
});

async function scrape(): Promise<Exposition> {
  const res = await t.app.request("/metrics");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/plain");
  return parseExposition(await res.text());
}

const confirm = (id: string) => t.call("POST", `/v1/payments/${id}/confirm`);

describe("the payment metrics of the deployment guide", () => {
  it("move by what a success, a decline, a cancel and a 3-D Secure payment did", async () => {
    const before = await scrape();
    const sandbox = { provider: "sandbox", currency: "EUR" };

    const success = await orderWithPayment(t, { amount: 1999, currency: "EUR" });
    expect((await confirm(success.payment.id)).body.status).toBe("succeeded");
    const decline = await orderWithPayment(t, { currency: "EUR", payment_method: "pm_card_chargeDeclined" });
    expect((await confirm(decline.payment.id)).body.status).toBe("failed");
    const canceled = await orderWithPayment(t, { currency: "EUR" });
    const cancel = await t.call("POST", `/v1/payments/${canceled.payment.id}/cancel`, {
      body: { reason: "abandoned" },
    });
    expect(cancel.body.status).toBe("canceled");
    const threeDs = await orderWithPayment(t, {
      amount: 5000,
      currency: "EUR",
      payment_method: "pm_card_threeDSecureRequired",
    });
    const challenged = await confirm(threeDs.payment.id);
    expect(challenged.body.status).toBe("requires_action");
    // Not confirmed yet: an active payment, until the next scrape shows otherwise.
    const waiting = await orderWithPayment(t, { currency: "EUR" });

    const during = await scrape();
    const active = (e: Exposition, status: string) => sampleValue(e, "active_payments_gauge", { status });
    expect(active(during, "requires_confirmation") - active(before, "requires_confirmation")).toBe(1);
    expect(active(during, "requires_action") - active(before, "requires_action")).toBe(1);

    const page = new URL(challenged.body.next_action.redirect_url);
    await t.app.request(page.pathname, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "action=complete",
    });
    await t.call("POST", `/v1/payments/${waiting.payment.id}/cancel`, { body: {} });
    const after = await scrape();

    // Soft: one run reports every metric that did not move as it should, not just the first.
    const moved = (name: string, labels: Record<string, string>) =>
      sampleValue(after, name, labels) - sampleValue(before, name, labels);
    expect
      .soft({
        succeeded: moved("payments_total", { ...sandbox, status: "succeeded" }),
        failed: moved("payments_total", { ...sandbox, status: "failed" }),
        canceled: moved("payments_total", { ...sandbox, status: "canceled" }),
        requires_action: moved("payments_total", { ...sandbox, status: "requires_action" }),
      })
      .toEqual({ succeeded: 2, failed: 1, canceled: 2, requires_action: 1 });

    // Three confirms reached the provider: the success, the decline, the 3-D Secure one.
    expect
      .soft(moved("payment_duration_seconds_count", { provider: "sandbox", operation: "confirm" }))
      .toBe(3);
    expect
      .soft(moved("payment_duration_seconds_sum", { provider: "sandbox", operation: "confirm" }))
      .toBeGreaterThan(0);
    expect
      .soft(
        moved("payment_duration_seconds_count", {
          provider: "sandbox",
          operation: "confirm",
          outcome: "failure",
        }),
      )
      .toBe(1);

    // Succeeded amounts, in major units: 19.99 + 50.00 EUR.
    expect.soft(moved("payment_amount_histogram_count", { currency: "EUR" })).toBe(2);
    expect.soft(moved("payment_amount_histogram_sum", { currency: "EUR" })).toBeCloseTo(69.99, 6);
    expect.soft(moved("payment_amount_histogram_bucket", { currency: "EUR", le: "50" })).toBe(2);
    expect.soft(moved("payment_amount_histogram_bucket", { currency: "EUR", le: "10" })).toBe(0);

    // Everything above ended terminal: nothing is active any more.
    expect.soft(active(after, "requires_confirmation")).toBe(active(before, "requires_confirmation"));
    expect.soft(active(after, "requires_action")).toBe(active(before, "requires_action"));
  });
});

describe("every metric of the contract", () => {
  it("has a series once every code path has run, with the contract's type and labels", async () => {
    await driveEveryPath();
    const exposition = await scrape();
    const present = sampleNames(exposition);

    const missing = EXPORTED_METRICS.filter((name) => !present.has(name));
    expect(missing, `no series in /metrics for: ${missing.join(", ")}`).toEqual([]);

    const problems: string[] = [];
    for (const metric of METRIC_CONTRACT) {
      const family = exposition.get(metric.name);
      if (!family) continue; // reported as missing above
      if (family.type !== metric.type)
        problems.push(`${metric.name}: type ${family.type}, contract ${metric.type}`);
      for (const sample of family.samples) {
        const allowed = new Set([...metric.labels, ...(sample.name.endsWith("_bucket") ? ["le"] : [])]);
        for (const [label, value] of Object.entries(sample.labels)) {
          if ((SCRAPE_LABELS as readonly string[]).includes(label)) {
            problems.push(`${sample.name}: sets ${label}, which the scrape adds`);
          } else if (!allowed.has(label)) {
            problems.push(`${sample.name}: label ${label} is not in the contract`);
          }
          const closed = metric.values?.[label];
          if (closed && !closed.includes(value))
            problems.push(`${sample.name}{${label}="${value}"}: not a contract value`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(contractFor("payments_total")?.type).toBe("counter");
  });
});

/** One of everything the service counts: payments, webhooks, events, cache, idempotency, readiness. */
async function driveEveryPath(): Promise<void> {
  withProviders(t, { stripe: eventOnlyProvider() });

  // Payments and provider calls.
  const { payment } = await orderWithPayment(t);
  await t.call("POST", `/v1/payments/${payment.id}/confirm`, { idempotencyKey: "metrics-replay" });
  const replay = await t.call("POST", `/v1/payments/${payment.id}/confirm`, {
    idempotencyKey: "metrics-replay",
  });
  expect(replay.headers.get("idempotent-replayed")).toBe("true");
  await t.call("GET", `/v1/payments/${payment.id}`); // status cache
  await t.call("GET", `/v1/payments/${payment.id}`);

  // Webhooks: applied, duplicate, rejected, ignored, and one for a payment nobody knows yet.
  const secret = t.config.providers.sandbox.webhookSecret;
  const processing = await processingPayment(t);
  const body = sandboxNotificationBody({ paymentId: processing.payment.id, type: "payment.succeeded" });
  expect((await postSandboxWebhook(t, body)).body.result).toBe("applied");
  expect((await postSandboxWebhook(t, body)).body.result).toBe("duplicate");
  const forged = await postSandboxWebhook(t, body, sandboxHeaders("not-the-secret", body));
  expect(forged.status).toBe(400);
  const unknown = sandboxNotificationBody({
    paymentId: `pay_${"0".repeat(32)}`,
    type: "payment.succeeded",
    id: sandboxEventId(),
  });
  await postSandboxWebhook(t, unknown, sandboxHeaders(secret, unknown));
  const ignored = await t.app.request("/v1/webhooks/stripe", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ id: "evt_metrics_ignored", type: "customer.created" }),
  });
  expect(ignored.status).toBe(200);

  // Events: everything above wrote outbox rows; send them.
  const drained = await t.service.outbox?.drain();
  expect(drained?.sent ?? 0).toBeGreaterThan(0);

  // Readiness: database and cache checks.
  expect((await t.app.request("/ready")).status).toBe(200);
}

/** A provider whose only job here is to send a notification type the service does not act on. */
function eventOnlyProvider(): PaymentProvider & WebhookVerifier {
  const unused = async (): Promise<never> => {
    throw new Error("not used");
  };
  return {
    name: "stripe" as ProviderName,
    authorize: unused,
    capture: unused,
    cancel: unused,
    refund: unused,
    retrieve: unused,
    async parseWebhook(request) {
      const event = JSON.parse(request.rawBody) as { id: string; type: string };
      return { eventId: event.id, type: event.type, occurredAt: new Date() };
    },
  };
}
