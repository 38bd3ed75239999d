/**
 * Traces in-process: an SDK tracer provider with an in-memory exporter stands in for the OTLP exporter
 * (lib/telemetry/otel.ts wires the same API to OTLP), and the harness serves requests through the real app.
 */
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { node, tracing } from "@opentelemetry/sdk-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { currentTraceparent, traceHeaders, withClientSpan, withSpan } from "../../lib/telemetry/tracing.ts";
import { orderWithPayment, startTestService, type TestService } from "../support/harness.ts";

const exporter = new tracing.InMemorySpanExporter();
const provider = new node.NodeTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] });

let t: TestService;
beforeAll(async () => {
  // Global AsyncLocalStorage context manager and W3C tracecontext propagator, as NodeSDK.start() registers them.
  provider.register();
  t = await startTestService();
});
afterAll(async () => {
  await t.close();
  await provider.shutdown();
  trace.disable();
});
beforeEach(() => exporter.reset());

const CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN = "b7ad6b7169203331";
const traceparent = `00-${CALLER_TRACE}-${CALLER_SPAN}-01`;

const spans = () => exporter.getFinishedSpans();
const serverSpans = () => spans().filter((s) => s.kind === SpanKind.SERVER);

describe("incoming requests", () => {
  it("continue the caller's trace in a server span named by the route template", async () => {
    const res = await t.call("POST", "/v1/orders", {
      body: { amount: 1999, currency: "USD" },
      headers: { traceparent },
    });
    expect(res.status).toBe(201);
    const [span, ...others] = serverSpans();
    expect(others).toEqual([]);
    expect(span?.name).toBe("POST /v1/orders");
    expect(span?.spanContext().traceId).toBe(CALLER_TRACE);
    expect(span?.parentSpanContext?.spanId).toBe(CALLER_SPAN);
    expect(span?.attributes).toMatchObject({
      "http.request.method": "POST",
      "http.route": "/v1/orders",
      "http.response.status_code": 201,
    });
  });

  it("start a new trace without a traceparent, and never name a span by its raw path", async () => {
    const missing = `ord_${"b".repeat(32)}`;
    expect((await t.call("GET", `/v1/orders/${missing}`)).status).toBe(404);
    const [span] = serverSpans();
    expect(span?.name).toBe("GET /v1/orders/:id");
    expect(span?.parentSpanContext).toBeUndefined();
    expect(JSON.stringify(spans().map((s) => [s.name, s.attributes]))).not.toContain(missing);
  });

  it("mark 5xx answers as errors", async () => {
    const db = t.service.db;
    t.service.db = {
      ...db,
      query: async () => {
        throw new Error("boom");
      },
    };
    try {
      expect((await t.call("GET", `/v1/orders/ord_${"c".repeat(32)}`)).status).toBe(500);
    } finally {
      t.service.db = db;
    }
    expect(serverSpans()[0]?.status.code).toBe(SpanStatusCode.ERROR);
  });

  it("are not traced for health checks, readiness probes and scrapes", async () => {
    for (const path of ["/health", "/ready", "/metrics"]) await t.app.request(path);
    expect(spans()).toEqual([]);
  });
});

describe("a confirm", () => {
  it("calls the provider in a client span under the request's span, and its events carry that span", async () => {
    const { payment } = await orderWithPayment(t);
    exporter.reset();
    const res = await t.call("POST", `/v1/payments/${payment.id}/confirm`, { headers: { traceparent } });
    expect(res.body.status).toBe("succeeded");

    const server = serverSpans()[0];
    const call = spans().find((s) => s.kind === SpanKind.CLIENT && s.name === "sandbox authorize");
    expect(call?.attributes).toMatchObject({
      "payment.provider": "sandbox",
      "payment.operation": "authorize",
    });
    expect(call?.spanContext().traceId).toBe(CALLER_TRACE);
    expect(call?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);

    // Consumers of the payment's events continue from the span that changed it, not from our caller.
    const { rows } = await t.service.db.query<{ traceparent: string | null }>(
      "SELECT traceparent FROM outbox WHERE subject = $1 ORDER BY seq DESC LIMIT 1",
      [payment.id],
    );
    expect(rows[0]?.traceparent).toBe(`00-${CALLER_TRACE}-${server?.spanContext().spanId}-01`);
  });
});

describe("withSpan and traceHeaders", () => {
  it("nest, propagate as W3C traceparent, and record a failure without swallowing it", async () => {
    const failure = withSpan("outbox send", { "messaging.batch.message_count": 3 }, async () => {
      const headers = await withSpan("inner", {}, async () => traceHeaders());
      expect(headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      throw new TypeError("sink refused");
    });
    await expect(failure).rejects.toThrow("sink refused");

    const outer = spans().find((s) => s.name === "outbox send");
    const inner = spans().find((s) => s.name === "inner");
    expect(inner?.parentSpanContext?.spanId).toBe(outer?.spanContext().spanId);
    expect(outer?.status).toEqual({ code: SpanStatusCode.ERROR, message: "TypeError" });
    expect(outer?.attributes).toMatchObject({
      "messaging.batch.message_count": 3,
      "error.type": "TypeError",
    });
  });

  it("continue a stored traceparent: an outbox send joins the trace of the request that wrote the event", async () => {
    const headers = await withClientSpan(
      "outbox send",
      { "cloudevents.event_type": "io.payment-service.payment.succeeded" },
      async () => traceHeaders(),
      { parent: traceparent },
    );
    const send = spans().find((s) => s.name === "outbox send");
    expect(send?.kind).toBe(SpanKind.CLIENT);
    expect(send?.spanContext().traceId).toBe(CALLER_TRACE);
    expect(send?.parentSpanContext?.spanId).toBe(CALLER_SPAN);
    expect(headers.traceparent).toBe(`00-${CALLER_TRACE}-${send?.spanContext().spanId}-01`);
  });

  it("give nothing to propagate outside a span", () => {
    expect(currentTraceparent()).toBeUndefined();
    expect(traceHeaders()).toEqual({});
  });
});
