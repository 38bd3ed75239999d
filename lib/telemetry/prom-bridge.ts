import { type Attributes, type HrTime, ValueType } from "@opentelemetry/api";
import { emptyResource } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type MetricData,
  type MetricProducer,
} from "@opentelemetry/sdk-metrics";
import type { Registry } from "prom-client";

type PromMetric = Awaited<ReturnType<Registry["getMetricsAsJSON"]>>[number];
type PromValue = PromMetric["values"][number] & { metricName?: string };

/**
 * prom-client's registry as an OpenTelemetry MetricProducer, so one set of instruments feeds both paths: the
 * /metrics text for a scrape, and OTLP pushes through a PeriodicExportingMetricReader to the collector.
 *
 * Why a bridge instead of OTel instruments: every metric is already a prom-client instrument, incremented all over
 * the code, and /metrics must keep working locally. Duplicating each one as an OTel instrument would mean two
 * increments per event and two definitions that drift apart; pushing the Prometheus text instead needs a
 * Pushgateway (which never forgets a pod's series) and loses the per-pod resource. Reading the registry at export
 * time is what a scrape does, so both paths carry the same numbers.
 *
 * Names are kept exactly (payments_total, payment_duration_seconds): the collector's Prometheus exporter runs with
 * add_metric_suffixes: false, so the series Prometheus stores match the /metrics names the rules use. Counters are
 * cumulative monotonic sums that start at process start, histograms keep prom-client's buckets.
 */
export function promMetricProducer(
  registry: Registry,
  options: { beforeCollect?: () => Promise<void>; startTime?: HrTime } = {},
): MetricProducer {
  const startTime = options.startTime ?? millisToHrTime(performance.timeOrigin);
  return {
    async collect(): Promise<CollectionResult> {
      const errors: unknown[] = [];
      // Gauges read from the database at collection time (active payments, outbox lag), as a scrape would.
      await options.beforeCollect?.().catch((error: unknown) => errors.push(error));
      const endTime = millisToHrTime(Date.now());
      const metrics: MetricData[] = [];
      for (const metric of await registry.getMetricsAsJSON()) {
        const data = toMetricData(metric, startTime, endTime);
        if (data) metrics.push(data);
      }
      return {
        resourceMetrics: {
          resource: emptyResource(), // the reader keeps the SDK's resource; this one is discarded
          scopeMetrics: [{ scope: { name: "payment-service" }, metrics }],
        },
        errors,
      };
    },
  };
}

export function toMetricData(metric: PromMetric, startTime: HrTime, endTime: HrTime): MetricData | undefined {
  const descriptor = { name: metric.name, description: metric.help, unit: "", valueType: ValueType.DOUBLE };
  const values: PromValue[] = metric.values;
  switch (String(metric.type)) {
    case "counter":
      return {
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.SUM,
        isMonotonic: true,
        dataPoints: values.map((v) => ({
          startTime,
          endTime,
          attributes: attributes(v.labels),
          value: v.value,
        })),
      };
    case "gauge":
      return {
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.GAUGE,
        dataPoints: values.map((v) => ({
          startTime,
          endTime,
          attributes: attributes(v.labels),
          value: v.value,
        })),
      };
    case "histogram":
      return {
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: histogramPoints(metric.name, values).map((point) => ({ startTime, endTime, ...point })),
      };
    default:
      // Summaries have no OTLP data point the collector's Prometheus exporter turns back into the same series;
      // the service defines none.
      return undefined;
  }
}

interface HistogramSeries {
  attributes: Attributes;
  buckets: { le: number; cumulative: number }[];
  sum: number;
  count: number;
}

/** prom-client lists a histogram as cumulative _bucket{le} values plus _sum and _count per label set. */
function histogramPoints(name: string, values: PromValue[]) {
  const series = new Map<string, HistogramSeries>();
  for (const v of values) {
    const { le, ...labels } = v.labels as Record<string, string | number>;
    const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
    let s = series.get(key);
    if (!s) {
      s = { attributes: attributes(labels), buckets: [], sum: 0, count: 0 };
      series.set(key, s);
    }
    const metricName = v.metricName;
    if (metricName === `${name}_bucket` && le !== undefined && le !== "+Inf") {
      s.buckets.push({ le: Number(le), cumulative: v.value });
    } else if (metricName === `${name}_sum`) s.sum = v.value;
    else if (metricName === `${name}_count`) s.count = v.value;
  }
  return [...series.values()].map((s) => {
    const sorted = s.buckets.sort((a, b) => a.le - b.le);
    const counts = sorted.map((b, i) => b.cumulative - (i === 0 ? 0 : (sorted[i - 1]?.cumulative ?? 0)));
    counts.push(s.count - (sorted.at(-1)?.cumulative ?? 0)); // the +Inf bucket
    return {
      attributes: s.attributes,
      value: { buckets: { boundaries: sorted.map((b) => b.le), counts }, sum: s.sum, count: s.count },
    };
  });
}

function attributes(labels: Partial<Record<string, string | number>> | undefined): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(labels ?? {})) if (v !== undefined) out[k] = String(v);
  return out;
}

function millisToHrTime(ms: number): HrTime {
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.round((ms - seconds * 1000) * 1e6)];
}
