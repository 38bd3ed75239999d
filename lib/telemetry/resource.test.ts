import { describe, expect, it } from "vitest";
import { loadConfig } from "../config/index.ts";
import { telemetryEnabled } from "./preload.ts";
import { parseResourceAttributes, resourceAttributes } from "./resource.ts";

const otel = (env: Record<string, string>) => loadConfig({ NODE_ENV: "test", ...env }).otel;

describe("resourceAttributes", () => {
  it("names a Knative pod by its host name and takes the namespace from OTEL_RESOURCE_ATTRIBUTES", () => {
    const attributes = resourceAttributes(
      otel({
        OTEL_SERVICE_NAME: "payment-service",
        OTEL_RESOURCE_ATTRIBUTES: "k8s.namespace.name=payment-service,deployment.environment=prod",
        K_SERVICE: "confirm",
        K_REVISION: "confirm-00007",
      }),
      "confirm-00007-deployment-5d8f9-abcde",
    );
    expect(attributes).toEqual({
      "service.name": "payment-service",
      "service.instance.id": "confirm-00007-deployment-5d8f9-abcde",
      "k8s.pod.name": "confirm-00007-deployment-5d8f9-abcde",
      "k8s.namespace.name": "payment-service",
      "faas.name": "confirm",
      "faas.version": "confirm-00007",
      "deployment.environment": "prod",
    });
  });

  it("prefers the downward API's POD_NAME and POD_NAMESPACE", () => {
    const attributes = resourceAttributes(
      otel({
        K_SERVICE: "create",
        POD_NAME: "create-1",
        POD_NAMESPACE: "staging",
        OTEL_RESOURCE_ATTRIBUTES: "k8s.namespace.name=payment-service",
      }),
      "ignored-host",
    );
    expect(attributes).toMatchObject({
      "k8s.pod.name": "create-1",
      "service.instance.id": "create-1",
      "k8s.namespace.name": "staging",
    });
  });

  it("outside Kubernetes gives each process its own instance id and no pod", () => {
    const a = resourceAttributes(otel({}), "laptop");
    const b = resourceAttributes(otel({}), "laptop");
    expect(a["k8s.pod.name"]).toBeUndefined();
    expect(a["service.name"]).toBe("payment-service");
    expect(a["service.instance.id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(a["service.instance.id"]).not.toBe(b["service.instance.id"]);
  });

  it("decodes percent-encoded values", () => {
    expect(parseResourceAttributes("a=x%2Cy,b=1")).toEqual({ a: "x,y", b: "1" });
  });
});

describe("telemetry configuration", () => {
  it("is off unless an endpoint or an exporter is configured", () => {
    expect(telemetryEnabled(otel({}))).toBe(false);
    expect(otel({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toMatchObject({
      traces: "otlp",
      metrics: "otlp",
      metricExportIntervalMs: 15_000,
    });
    expect(
      otel({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_TRACES_EXPORTER: "none" }),
    ).toMatchObject({ traces: "none", metrics: "otlp" });
    expect(telemetryEnabled(otel({ OTEL_TRACES_EXPORTER: "console" }))).toBe(true);
    expect(
      telemetryEnabled(
        otel({
          OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
          OTEL_TRACES_EXPORTER: "none",
          OTEL_METRICS_EXPORTER: "none",
        }),
      ),
    ).toBe(false);
  });

  it("refuses exporters it does not have, naming the variable", () => {
    expect(() => otel({ OTEL_METRICS_EXPORTER: "prometheus" })).toThrow(/OTEL_METRICS_EXPORTER/);
    expect(() => otel({ OTEL_METRIC_EXPORT_INTERVAL: "10" })).toThrow(/OTEL_METRIC_EXPORT_INTERVAL/);
  });
});
