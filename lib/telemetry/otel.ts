import { createNoopMeter, DiagLogLevel, diag, trace } from "@opentelemetry/api";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import type { InstrumentationBase } from "@opentelemetry/instrumentation";
import type { IORedisInstrumentation as IORedisInstrumentationClass } from "@opentelemetry/instrumentation-ioredis";
import type { PgInstrumentation as PgInstrumentationClass } from "@opentelemetry/instrumentation-pg";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { NodeSDK, metrics as sdkMetrics, tracing } from "@opentelemetry/sdk-node";
import type PgModule from "pg";
import type { Registry } from "prom-client";
import type { whenIoredisLoads } from "../cache/redis.ts";
import type { Config } from "../config/index.ts";
import type { Logger } from "./logger.ts";
import { promMetricProducer } from "./prom-bridge.ts";
import { resourceAttributes } from "./resource.ts";

/**
 * What OpenTelemetry reads and patches, handed over by the caller rather than imported here: a function's bundle
 * loads this module as a file of its own (dist/functions/_otel.cjs), which must act on the bundle's own registry
 * and driver modules, not on copies of them.
 */
export interface Instrumented {
  registry: Registry;
  loadPg: () => Promise<object>;
  loadNeon: () => Promise<object>;
  whenIoredisLoads: typeof whenIoredisLoads;
}

export interface OtelHandle {
  /** Exports what is buffered (spans, a last metrics push) and stops; call once, on shutdown. */
  shutdown(): Promise<void>;
}

/**
 * The OpenTelemetry SDK. Imported only through preload.ts when an exporter is configured, so a process without
 * one never loads any of it. Loading it costs a cold start about 0.12 s of CPU and 14 MiB (bench/startup.ts);
 * assembling the same pieces without NodeSDK (which imports every exporter it could build from the environment:
 * gRPC, protobuf, Zipkin, logs) measured about 0.02 s and 6 MiB less, not worth leaving the SDK's entry point.
 *
 * Traces: OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (/v1/traces), batched. Sampling follows the standard
 * OTEL_TRACES_SAMPLER variables (parent-based always-on by default), propagation is W3C tracecontext + baggage.
 *
 * Metrics: pushed over OTLP every OTEL_METRIC_EXPORT_INTERVAL, and once more on shutdown. They are the prom-client
 * registry's (prom-bridge.ts), so /metrics and the push carry the same series. Exactly one of the two may reach
 * Prometheus: in Knative the pods are not scraped (a pod scaled to zero is gone before the next scrape, and
 * scraping too would count every payment twice); the collector is.
 */
export async function startOtel(
  config: Config,
  options: { log: Logger; beforeMetricsExport: () => Promise<void>; instrumented: Instrumented },
): Promise<OtelHandle> {
  const { registry } = options.instrumented;
  const { otel } = config;
  diag.setLogger(diagToLog(options.log), DiagLogLevel.WARN);
  const base = otel.endpoint?.replace(/\/$/, "");

  const spanProcessors =
    otel.traces === "none"
      ? []
      : [
          otel.traces === "console"
            ? new tracing.SimpleSpanProcessor(new tracing.ConsoleSpanExporter())
            : new tracing.BatchSpanProcessor(new OTLPTraceExporter(base ? { url: `${base}/v1/traces` } : {})),
        ];
  const metricReaders =
    otel.metrics === "none"
      ? []
      : [
          new sdkMetrics.PeriodicExportingMetricReader({
            exporter:
              otel.metrics === "console"
                ? new sdkMetrics.ConsoleMetricExporter()
                : new OTLPMetricExporter(base ? { url: `${base}/v1/metrics` } : {}),
            exportIntervalMillis: otel.metricExportIntervalMs,
            exportTimeoutMillis: Math.min(otel.metricExportIntervalMs, 10_000),
            metricProducers: [promMetricProducer(registry, { beforeCollect: options.beforeMetricsExport })],
          }),
        ];

  const sdk = new NodeSDK({
    resource: defaultResource().merge(resourceFromAttributes(resourceAttributes(otel))),
    // Detectors would add host.*, os.* and process.* attributes (command line included), which the collector
    // then has to strip from every series; the resource above says what matters.
    autoDetectResources: false,
    spanProcessors,
    metricReaders,
    // No OTel logs: the service logs JSON lines to stdout (logger.ts).
    logRecordProcessors: [],
  });
  sdk.start();
  if (otel.traces !== "none") await instrumentClients(config, options.instrumented);
  return { shutdown: () => sdk.shutdown() };
}

/**
 * SQL and Redis spans from the official instrumentations, applied to the very module objects the service uses.
 * Their usual require-hook mode cannot see modules that esbuild bundled into dist/ (and ESM imports need a loader
 * flag), so the hooks stay off and the patches are applied directly; that works bundled, under tsx and in tests.
 * Only the drivers this process is configured for are loaded.
 */
async function instrumentClients(config: Config, instrumented: Instrumented): Promise<void> {
  if (config.db.driver === "pg" || config.db.driver === "neon") {
    const PgInstrumentation = named<typeof PgInstrumentationClass>(
      await import("@opentelemetry/instrumentation-pg"),
      "PgInstrumentation",
    );
    // requireParentSpan: background pollers' queries do not each start a trace of their own.
    const pgTracing = quiet(new PgInstrumentation({ enabled: false, requireParentSpan: true }));
    if (config.db.driver === "pg") {
      const client = named<typeof PgModule>(await instrumented.loadPg(), "default");
      applyPatch(pgTracing, "pg", client);
      // pg.Pool extends pg-pool's Pool: its prototype.connect is what waits for a free connection.
      applyPatch(pgTracing, "pg-pool", Object.getPrototypeOf(client.Pool));
    } else {
      // The Neon driver's Client is node-postgres' Client, forked: same query() the patch wraps.
      applyPatch(pgTracing, "pg", { Client: named(await instrumented.loadNeon(), "Client") });
    }
  }
  if (config.redisUrl) {
    const IORedisInstrumentation = named<typeof IORedisInstrumentationClass>(
      await import("@opentelemetry/instrumentation-ioredis"),
      "IORedisInstrumentation",
    );
    const redis = quiet(
      new IORedisInstrumentation({
        enabled: false,
        requireParentSpan: true,
        // Keys carry merchant ids and idempotency keys, values carry cached payments: the command name is enough.
        dbStatementSerializer: (command) => command,
      }),
    );
    // Patched when a cache loads ioredis (after a function's first answer), not here: see lib/cache/redis.ts.
    instrumented.whenIoredisLoads((ioredis) => applyPatch(redis, "ioredis", named(ioredis, "Redis")));
  }
}

/**
 * An export of a dynamically imported module. esbuild's chunk for a CommonJS package exposes only `default` (the
 * module.exports object), Node's own import also the names it detects: look in both.
 */
function named<T = unknown>(namespace: object, name: string): T {
  const direct = (namespace as Record<string, unknown>)[name];
  const value = direct ?? (namespace as { default?: Record<string, unknown> }).default?.[name];
  if (value === undefined) throw new Error(`the module has no export ${name}`);
  return value as T;
}

function applyPatch(instrumentation: InstrumentationBase, moduleName: string, moduleExports: unknown): void {
  const definition = instrumentation.getModuleDefinitions().find((d) => d.name === moduleName);
  if (!definition?.patch)
    throw new Error(`${instrumentation.instrumentationName} cannot patch ${moduleName}`);
  definition.patch(moduleExports);
}

/**
 * Instrumentations also record their own OTel metrics (db.client.operation.duration, …); those would reach
 * Prometheus only through the push, never through /metrics, so the two paths would disagree. Spans only.
 */
function quiet<T extends InstrumentationBase>(instrumentation: T): T {
  instrumentation.setTracerProvider(trace.getTracerProvider());
  instrumentation.setMeterProvider({ getMeter: () => createNoopMeter() });
  return instrumentation;
}

/** The SDK's own complaints (an unreachable collector, a rejected export) as log lines, not silence. */
function diagToLog(log: Logger) {
  const write =
    (level: "warn" | "error") =>
    (message: string, ...args: unknown[]) =>
      log[level]({ component: "opentelemetry", detail: args.map(String).join(" ") }, message);
  return {
    error: write("error"),
    warn: write("warn"),
    info: () => {},
    debug: () => {},
    verbose: () => {},
  };
}
