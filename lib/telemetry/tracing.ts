import {
  type Attributes,
  type Context,
  context,
  isSpanContextValid,
  type ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";

/**
 * Spans and W3C propagation through @opentelemetry/api only. Until the SDK is started (lib/telemetry/otel.ts,
 * loaded only when an exporter is configured) every call here is the API's no-op: no allocation beyond a
 * non-recording span, no export, no SDK code loaded.
 */
const TRACER_NAME = "payment-service";
// Looked up on each use, never kept: a function's bundle carries its own copy of the API, and the SDK (bundled apart,
// scripts/bundle.ts) registers its provider through another copy. A tracer taken from this copy before that would
// stay a no-op; the global provider looked up at the time of use is the registered one.
const tracer = () => trace.getTracer(TRACER_NAME);

/**
 * Whether an SDK has registered a tracer provider. Until one has, a request's span, its context and the header
 * lookups for propagation would all be the API's no-ops: per request, several objects made for nothing. The global
 * provider is the API's proxy, of whichever copy of the API registered it (so no instanceof), and it has no
 * delegate tracer until an SDK has set one.
 */
function tracingRegistered(): boolean {
  const provider = trace.getTracerProvider() as Partial<ProxyTracerProvider>;
  return (
    typeof provider.getDelegateTracer !== "function" || provider.getDelegateTracer(TRACER_NAME) !== undefined
  );
}

export interface SpanOptions {
  kind?: SpanKind;
  /**
   * A stored W3C traceparent to continue instead of the active span: an outbox row's, so the send of an event
   * joins the trace of the request that wrote it.
   */
  parent?: string | null;
}

/**
 * Runs `fn` in a new span, child of the active one (or of `parent`): ended when `fn` settles, marked as an error
 * when it throws. For outbox sends, reconciliation passes and anything else that is not an HTTP request.
 */
export function withSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  options: SpanOptions = {},
): Promise<T> {
  const parent = options.parent
    ? propagation.extract(ROOT_CONTEXT, { traceparent: options.parent })
    : context.active();
  return tracer().startActiveSpan(
    name,
    { kind: options.kind ?? SpanKind.INTERNAL, attributes },
    parent,
    async (span) => {
      try {
        return await fn(span);
      } catch (error) {
        recordError(span, error);
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** The same, for a call that leaves the process (a provider's API, the event sink). */
export function withClientSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  options: Omit<SpanOptions, "kind"> = {},
) {
  return withSpan(name, attributes, fn, { ...options, kind: SpanKind.CLIENT });
}

export function recordError(span: Span, error: unknown): void {
  if (error instanceof Error) {
    // The error's type only: messages may quote request data, and spans go to a backend with other retention rules.
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.name });
    span.setAttribute("error.type", error.name);
  } else {
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
}

/**
 * `traceparent` (and `tracestate`) for the active span, to put on an outgoing request or event. Empty while
 * tracing is off, so callers can always spread it into their headers.
 */
export function traceHeaders(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

/** The active span's W3C traceparent, or undefined while tracing is off. */
export function currentTraceparent(ctx: Context = context.active()): string | undefined {
  const span = trace.getSpan(ctx);
  if (!span) return undefined;
  const sc = span.spanContext();
  if (!isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & 1).toString(16)}`;
}

/**
 * One incoming HTTP request's server span, continuing the caller's trace when it sent a traceparent. `traced`
 * false (health and readiness probes, scrapes: thousands a day per instance, nothing to learn) makes none, and
 * neither does any request while no SDK is registered. `headers` is read only for a span that is made.
 */
export interface RequestSpan {
  /** Runs the rest of the request inside the span, so database, cache and provider spans become its children. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** The trace id to log: the span's, or the caller's when tracing is off. */
  traceId?: string;
  /** What to propagate to events and provider calls: our span when tracing, else the caller's traceparent. */
  traceparent?: string;
  end(route: string, status: number): void;
}

export function startRequestSpan(
  method: string,
  headers: () => Headers,
  callerTraceparent?: string,
  traced = true,
): RequestSpan {
  if (!traced || !tracingRegistered()) {
    return {
      run: (fn) => fn(),
      traceparent: callerTraceparent,
      traceId: callerTraceparent?.slice(3, 35),
      end: () => {},
    };
  }
  const parent = propagation.extract(ROOT_CONTEXT, headers(), headerGetter);
  const span = tracer().startSpan(
    method,
    { kind: SpanKind.SERVER, attributes: { "http.request.method": method } },
    parent,
  );
  const ctx = trace.setSpan(parent, span);
  const traceparent = currentTraceparent(ctx) ?? callerTraceparent;
  return {
    run: (fn) => context.with(ctx, fn),
    traceparent,
    traceId: traceparent?.slice(3, 35),
    end(route, status) {
      // Named by the route template, never the raw path: span names are grouped on, like metric labels.
      span.updateName(`${method} ${route}`);
      span.setAttribute("http.route", route);
      span.setAttribute("http.response.status_code", status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    },
  };
}

const headerGetter = {
  get: (carrier: Headers, key: string) => carrier.get(key) ?? undefined,
  keys: (carrier: Headers) => [...carrier.keys()],
};
