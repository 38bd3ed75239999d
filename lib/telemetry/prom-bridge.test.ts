import { DataPointType, type HistogramMetricData, type SumMetricData } from "@opentelemetry/sdk-metrics";
import client from "prom-client";
import { describe, expect, it } from "vitest";
import { promMetricProducer } from "./prom-bridge.ts";

function registryWithOneOfEach() {
  const registry = new client.Registry();
  const counter = new client.Counter({
    name: "things_total",
    help: "Things.",
    labelNames: ["kind"],
    registers: [registry],
  });
  const gauge = new client.Gauge({ name: "level", help: "Level.", registers: [registry] });
  const histogram = new client.Histogram({
    name: "wait_seconds",
    help: "Waits.",
    labelNames: ["op"],
    buckets: [0.1, 1, 10],
    registers: [registry],
  });
  return { registry, counter, gauge, histogram };
}

async function collect(producer: ReturnType<typeof promMetricProducer>) {
  const result = await producer.collect();
  const metrics = result.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  return { result, byName: new Map(metrics.map((m) => [m.descriptor.name, m])) };
}

describe("promMetricProducer", () => {
  it("turns counters into cumulative monotonic sums under their Prometheus names", async () => {
    const { registry, counter } = registryWithOneOfEach();
    counter.inc({ kind: "a" }, 3);
    counter.inc({ kind: "b" });
    const { byName } = await collect(promMetricProducer(registry, { startTime: [1, 0] }));
    const sum = byName.get("things_total") as SumMetricData;
    expect(sum.dataPointType).toBe(DataPointType.SUM);
    expect(sum.isMonotonic).toBe(true);
    expect(sum.descriptor.description).toBe("Things.");
    expect(sum.dataPoints.map((p) => [p.attributes, p.value])).toEqual([
      [{ kind: "a" }, 3],
      [{ kind: "b" }, 1],
    ]);
    expect(sum.dataPoints[0]?.startTime).toEqual([1, 0]);
  });

  it("turns gauges into gauges", async () => {
    const { registry, gauge } = registryWithOneOfEach();
    gauge.set(7);
    const { byName } = await collect(promMetricProducer(registry));
    const data = byName.get("level");
    expect(data?.dataPointType).toBe(DataPointType.GAUGE);
    expect(data?.dataPoints.map((p) => p.value)).toEqual([7]);
  });

  it("turns cumulative le buckets into per-bucket counts with the +Inf bucket last", async () => {
    const { registry, histogram } = registryWithOneOfEach();
    for (const v of [0.05, 0.5, 0.7, 5, 50]) histogram.observe({ op: "x" }, v);
    histogram.observe({ op: "y" }, 0.2);
    const { byName } = await collect(promMetricProducer(registry));
    const data = byName.get("wait_seconds") as HistogramMetricData;
    expect(data.dataPointType).toBe(DataPointType.HISTOGRAM);
    const x = data.dataPoints.find((p) => p.attributes.op === "x");
    expect(x?.value.buckets).toEqual({ boundaries: [0.1, 1, 10], counts: [1, 2, 1, 1] });
    expect(x?.value.count).toBe(5);
    expect(x?.value.sum).toBeCloseTo(56.25, 10);
    expect(x?.attributes).toEqual({ op: "x" }); // no le
    const y = data.dataPoints.find((p) => p.attributes.op === "y");
    expect(y?.value.buckets.counts).toEqual([0, 1, 0, 0]);
  });

  it("refreshes before collecting, and reports a failed refresh without dropping the rest", async () => {
    const { registry, gauge } = registryWithOneOfEach();
    let calls = 0;
    const ok = await collect(
      promMetricProducer(registry, {
        beforeCollect: async () => {
          calls++;
          gauge.set(42);
        },
      }),
    );
    expect(calls).toBe(1);
    expect(ok.byName.get("level")?.dataPoints[0]?.value).toBe(42);

    const failing = await collect(
      promMetricProducer(registry, {
        beforeCollect: async () => {
          throw new Error("database down");
        },
      }),
    );
    expect(failing.result.errors).toHaveLength(1);
    expect(failing.byName.has("things_total")).toBe(true);
  });
});
