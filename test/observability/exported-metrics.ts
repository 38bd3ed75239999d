/**
 * The metrics the payment service exports: the contract that the Prometheus rules and the
 * Grafana dashboard in observability/ are allowed to query, and that a scrape of /metrics
 * must satisfy. Names are exact (prom-client); labels exclude the ones the scrape adds.
 *
 * Kept as data, not just names, so a test against a real /metrics scrape can check types
 * and label names too, and so the query test can reject a label or label value the
 * service never emits (a typo there gives an empty panel, not an error).
 */

export type MetricType = "counter" | "gauge" | "histogram";

export interface MetricContract {
  readonly name: string;
  readonly type: MetricType;
  /** Label names the service sets itself (scrape labels are in SCRAPE_LABELS). */
  readonly labels: readonly string[];
  /** For labels with a closed set of values: the values. Other labels are open. */
  readonly values?: Readonly<Record<string, readonly string[]>>;
}

/** Added by the scrape (or by the OTel Collector from resource attributes), not by the service. */
export const SCRAPE_LABELS = ["job", "instance", "namespace", "pod"] as const;

const PAYMENT_STATUSES = [
  "succeeded",
  "failed",
  "canceled",
  "requires_action",
  "requires_capture",
  "processing",
] as const;
// Not yet terminal: what active_payments_gauge counts.
const OPEN_PAYMENT_STATUSES = [
  "requires_confirmation",
  "processing",
  "requires_action",
  "requires_capture",
] as const;
const PAYMENT_OPERATIONS = ["confirm", "capture", "cancel", "refund"] as const;
const INTEGRATIONS = [
  "database",
  "cache",
  "provider_sandbox",
  "provider_stripe",
  "provider_yookassa",
] as const;

export const METRIC_CONTRACT: readonly MetricContract[] = [
  // payments
  {
    name: "payments_total",
    type: "counter",
    labels: ["provider", "status", "currency"],
    values: { status: PAYMENT_STATUSES },
  },
  {
    name: "payment_duration_seconds",
    type: "histogram",
    labels: ["provider", "operation", "outcome"],
    values: { operation: PAYMENT_OPERATIONS, outcome: ["success", "failure", "error"] },
  },
  { name: "payment_amount_histogram", type: "histogram", labels: ["currency"] },
  {
    name: "active_payments_gauge",
    type: "gauge",
    labels: ["status"],
    values: { status: OPEN_PAYMENT_STATUSES },
  },

  // HTTP
  { name: "http_requests_total", type: "counter", labels: ["function", "method", "route", "status"] },
  { name: "http_request_duration_seconds", type: "histogram", labels: ["function", "method", "route"] },

  // providers
  {
    name: "provider_requests_total",
    type: "counter",
    labels: ["provider", "operation", "outcome"],
    values: { outcome: ["success", "error", "timeout", "circuit_open"] },
  },
  { name: "provider_request_duration_seconds", type: "histogram", labels: ["provider", "operation"] },
  { name: "provider_circuit_state", type: "gauge", labels: ["provider"] },

  // webhooks
  { name: "webhooks_received_total", type: "counter", labels: ["provider"] },
  { name: "webhooks_duplicate_total", type: "counter", labels: ["provider"] },
  { name: "webhooks_failed_total", type: "counter", labels: ["provider"] },
  { name: "webhooks_rejected_total", type: "counter", labels: ["provider", "reason"] },
  { name: "webhooks_ignored_total", type: "counter", labels: ["provider"] },
  {
    name: "payment_provider_discrepancies_total",
    type: "counter",
    labels: ["provider", "kind"],
    values: { kind: ["charged_after_cancel", "cancel_refused"] },
  },

  // outbox
  { name: "outbox_lag_seconds", type: "gauge", labels: [] },
  { name: "outbox_pending_events", type: "gauge", labels: [] },
  { name: "outbox_delivered_total", type: "counter", labels: [] },
  { name: "outbox_delivery_failures_total", type: "counter", labels: [] },

  // cache, idempotency, rate limits
  {
    name: "cache_requests_total",
    type: "counter",
    labels: ["cache", "result"],
    values: { result: ["hit", "miss", "error"] },
  },
  { name: "idempotency_replays_total", type: "counter", labels: ["function"] },
  { name: "rate_limited_total", type: "counter", labels: ["scope"], values: { scope: ["ip", "merchant"] } },

  // integrations
  {
    name: "integration_up",
    type: "gauge",
    labels: ["integration"],
    values: { integration: INTEGRATIONS },
  },

  // prom-client process defaults (the subset the rules and dashboard rely on)
  { name: "process_cpu_seconds_total", type: "counter", labels: [] },
  { name: "process_resident_memory_bytes", type: "gauge", labels: [] },
  { name: "nodejs_eventloop_lag_seconds", type: "gauge", labels: [] },
  { name: "nodejs_heap_size_used_bytes", type: "gauge", labels: [] },
  { name: "nodejs_gc_duration_seconds", type: "histogram", labels: ["kind"] },
];

/** The series names a metric produces in the Prometheus text format. */
export function seriesNames(metric: MetricContract): string[] {
  if (metric.type === "histogram") {
    return [`${metric.name}_bucket`, `${metric.name}_sum`, `${metric.name}_count`];
  }
  return [metric.name];
}

/** Every series name a query may reference: histograms expanded to _bucket/_sum/_count. */
export const EXPORTED_METRICS: readonly string[] = METRIC_CONTRACT.flatMap(seriesNames);

/** The contract entry a series name belongs to (payment_duration_seconds_bucket → payment_duration_seconds). */
export function contractFor(seriesName: string): MetricContract | undefined {
  return METRIC_CONTRACT.find((metric) => seriesNames(metric).includes(seriesName));
}

/** Label names a selector on this series may use: the metric's, the scrape's, and `le` on buckets. */
export function allowedLabels(seriesName: string): string[] {
  const metric = contractFor(seriesName);
  if (metric === undefined) return [];
  const labels: string[] = [...metric.labels, ...SCRAPE_LABELS];
  if (seriesName.endsWith("_bucket") && metric.type === "histogram") labels.push("le");
  return labels;
}
