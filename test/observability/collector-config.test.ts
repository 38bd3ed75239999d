/**
 * Structure of observability/otel-collector.yaml. No collector binary runs here, so this
 * checks what a typo would silently break: the ports the service and Prometheus use,
 * pipelines naming components that exist, and processor order.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";

interface Pipeline {
  receivers: string[];
  processors?: string[];
  exporters: string[];
}
interface CollectorConfig {
  receivers: Record<string, { protocols?: Record<string, { endpoint?: string }> }>;
  processors: Record<string, unknown>;
  exporters: Record<string, Record<string, unknown>>;
  extensions?: Record<string, unknown>;
  service: { extensions?: string[]; pipelines: Record<string, Pipeline> };
}

const config = parseYaml(
  readFileSync(fileURLToPath(new URL("../../observability/otel-collector.yaml", import.meta.url)), "utf8"),
) as CollectorConfig;

describe("otel-collector.yaml", () => {
  it("receives OTLP on gRPC 4317 and HTTP 4318", () => {
    const protocols = config.receivers.otlp?.protocols;
    expect(protocols?.grpc?.endpoint).toBe("0.0.0.0:4317");
    expect(protocols?.http?.endpoint).toBe("0.0.0.0:4318");
  });

  it("exposes metrics for Prometheus on 8889 under the service's own names", () => {
    const prometheus = config.exporters.prometheus;
    expect(prometheus?.endpoint).toBe("0.0.0.0:8889");
    // With suffixes added, payment_duration_seconds could become …_seconds_seconds and
    // counters would get a second _total: the rules would then match nothing.
    expect(prometheus?.add_metric_suffixes).toBe(false);
  });

  it("sends traces to the backend named by TRACES_ENDPOINT", () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the collector's env syntax, meant literally
    expect(config.exporters["otlp/traces"]?.endpoint).toBe("${env:TRACES_ENDPOINT}");
  });

  it("has metrics and traces pipelines that only name configured components", () => {
    const { pipelines } = config.service;
    expect(Object.keys(pipelines).sort()).toEqual(["metrics", "traces"]);
    expect(pipelines.metrics?.exporters).toContain("prometheus");
    expect(pipelines.traces?.exporters).toContain("otlp/traces");
    for (const [name, pipeline] of Object.entries(pipelines)) {
      for (const receiver of pipeline.receivers) expect(config.receivers, name).toHaveProperty([receiver]);
      for (const processor of pipeline.processors ?? [])
        expect(config.processors, name).toHaveProperty([processor]);
      for (const exporter of pipeline.exporters) expect(config.exporters, name).toHaveProperty([exporter]);
    }
    for (const extension of config.service.extensions ?? []) {
      expect(config.extensions).toHaveProperty([extension]);
    }
  });

  it("limits memory first and batches last in every pipeline", () => {
    for (const [name, pipeline] of Object.entries(config.service.pipelines)) {
      const processors = pipeline.processors ?? [];
      expect(processors[0], name).toBe("memory_limiter");
      expect(processors[processors.length - 1], name).toBe("batch");
    }
  });
});
