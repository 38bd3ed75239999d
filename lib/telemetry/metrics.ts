import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "./prom-classes.ts";

/**
 * The service's Prometheus metrics. Label values come from bounded sets only (function names, route templates,
 * provider names, statuses, currencies): never ids or merchants, so series counts stay fixed under load.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

/**
 * What payment_provider_discrepancies_total counts. charged_after_cancel: the provider reported a charge (or an
 * authorization) of a payment canceled here; cancel_refused: the provider refused to cancel a payment canceled here
 * (it may have charged it, for instance when the customer finished 3-D Secure as the merchant canceled).
 */
export const DISCREPANCY_KINDS = ["charged_after_cancel", "cancel_refused"] as const;

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

export const metrics = {
  paymentsTotal: new Counter({
    name: "payments_total",
    help: "Payments that reached a status, by provider, status and currency.",
    labelNames: ["provider", "status", "currency"] as const,
    registers: [registry],
  }),
  paymentDuration: new Histogram({
    name: "payment_duration_seconds",
    help: "Time to process a payment operation end to end, provider call included.",
    labelNames: ["provider", "operation", "outcome"] as const,
    buckets: latencyBuckets,
    registers: [registry],
  }),
  paymentAmount: new Histogram({
    name: "payment_amount_histogram",
    help: "Amounts of succeeded payments in major units of their currency.",
    labelNames: ["currency"] as const,
    buckets: [1, 5, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 1_000_000],
    registers: [registry],
  }),
  activePayments: new Gauge({
    name: "active_payments_gauge",
    help: "Payments not yet in a terminal status, by status (refreshed from the database).",
    labelNames: ["status"] as const,
    registers: [registry],
  }),
  httpRequests: new Counter({
    name: "http_requests_total",
    help: "HTTP requests by function, method, route template and status.",
    labelNames: ["function", "method", "route", "status"] as const,
    registers: [registry],
  }),
  httpDuration: new Histogram({
    name: "http_request_duration_seconds",
    help: "HTTP request latency by function, method and route template.",
    labelNames: ["function", "method", "route"] as const,
    buckets: latencyBuckets,
    registers: [registry],
  }),
  providerRequests: new Counter({
    name: "provider_requests_total",
    help: "Calls to payment providers by outcome.",
    labelNames: ["provider", "operation", "outcome"] as const,
    registers: [registry],
  }),
  providerDuration: new Histogram({
    name: "provider_request_duration_seconds",
    help: "Latency of calls to payment providers.",
    labelNames: ["provider", "operation"] as const,
    buckets: latencyBuckets,
    registers: [registry],
  }),
  providerCircuitState: new Gauge({
    name: "provider_circuit_state",
    help: "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
    labelNames: ["provider"] as const,
    registers: [registry],
  }),
  webhooksReceived: new Counter({
    name: "webhooks_received_total",
    help: "Provider notifications received.",
    labelNames: ["provider"] as const,
    registers: [registry],
  }),
  webhooksDuplicate: new Counter({
    name: "webhooks_duplicate_total",
    help: "Provider notifications already seen (acknowledged, not applied again).",
    labelNames: ["provider"] as const,
    registers: [registry],
  }),
  webhooksRejected: new Counter({
    name: "webhooks_rejected_total",
    help: "Provider notifications rejected before storage (bad signature, stale, not allowed).",
    labelNames: ["provider", "reason"] as const,
    registers: [registry],
  }),
  webhooksFailed: new Counter({
    name: "webhooks_failed_total",
    help: "Provider notifications stored but not applied yet (retried by the provider).",
    labelNames: ["provider"] as const,
    registers: [registry],
  }),
  webhooksIgnored: new Counter({
    name: "webhooks_ignored_total",
    help: "Provider notifications of types the service does not act on.",
    labelNames: ["provider"] as const,
    registers: [registry],
  }),
  outboxLag: new Gauge({
    name: "outbox_lag_seconds",
    help: "Age of the oldest event not yet delivered.",
    registers: [registry],
  }),
  outboxPending: new Gauge({
    name: "outbox_pending_events",
    help: "Events waiting in the outbox.",
    registers: [registry],
  }),
  outboxDelivered: new Counter({
    name: "outbox_delivered_total",
    help: "Events delivered to the sink.",
    registers: [registry],
  }),
  outboxDeliveryFailures: new Counter({
    name: "outbox_delivery_failures_total",
    help: "Failed event deliveries (retried with backoff).",
    registers: [registry],
  }),
  cacheRequests: new Counter({
    name: "cache_requests_total",
    help: "Status cache lookups by result.",
    labelNames: ["cache", "result"] as const,
    registers: [registry],
  }),
  idempotencyReplays: new Counter({
    name: "idempotency_replays_total",
    help: "Responses replayed for a repeated Idempotency-Key.",
    labelNames: ["function"] as const,
    registers: [registry],
  }),
  rateLimited: new Counter({
    name: "rate_limited_total",
    help: "Requests answered 429.",
    labelNames: ["scope"] as const,
    registers: [registry],
  }),
  providerDiscrepancies: new Counter({
    name: "payment_provider_discrepancies_total",
    help: "Payments canceled here that their provider charged or refused to cancel: to settle by hand (refund).",
    labelNames: ["provider", "kind"] as const,
    registers: [registry],
  }),
  integrationUp: new Gauge({
    name: "integration_up",
    help: "1 when a dependency answered its last check, else 0.",
    labelNames: ["integration"] as const,
    registers: [registry],
  }),
};
