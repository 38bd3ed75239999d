import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { isUnavailable } from "../db/db.ts";
import type { Actor, ServiceContext } from "../payments/context.ts";
import { providerReadiness } from "../providers/readiness.ts";
import { metrics } from "../telemetry/metrics.ts";
import { startRequestSpan } from "../telemetry/tracing.ts";
import { answer, answeredHeaders, answerHeaders } from "./answer.ts";
import { createAuthenticator, requireScope } from "./auth.ts";
import { clientIp, parseList } from "./client-ip.ts";
import { ApiError } from "./errors.ts";
import { createIdempotencyStore, requestFingerprint, validIdempotencyKey } from "./idempotency.ts";
import { createIdempotencyLock } from "./idempotency-lock.ts";
import { jsonBody } from "./json-text.ts";
import { PROBE_PATHS, probeRoutes } from "./probes.ts";
import { problemResponse } from "./problem.ts";
import { createRateLimiter, limitersFor, type RateLimiterFactory } from "./rate-limit.ts";
import { requestIdFrom, validTraceparent } from "./request-id.ts";
import type { FunctionDefinition, RouteSpec } from "./route.ts";
import { findPans, MAX_JSON_DEPTH, parseWith, tooDeep } from "./validate.ts";

export const MAX_BODY_BYTES = 64 * 1024;
const JSON_CONTENT = { "Content-Type": "application/json" };

export interface AppOptions {
  rateLimiters?: RateLimiterFactory;
  /** Extra readiness checks (provider circuits). */
  readiness?: () => Record<string, "ok" | "degraded" | "down">;
}

type Env = { Variables: { requestId: string; traceparent?: string; route: string; fn: string } };

/**
 * Builds the Hono app serving the given functions: one function per Knative Service, or all of them in the
 * local all-in-one process. Everything the contract says of every endpoint happens here, once.
 */
export function buildApp(service: ServiceContext, functions: FunctionDefinition[], options: AppOptions = {}) {
  const app = new Hono<Env>();
  const authenticate = createAuthenticator(service.config.auth);
  const rateLimit = createRateLimiter(
    service.config.rateLimit,
    options.rateLimiters ?? limitersFor(service.cache),
    service.log,
  );
  const idempotency = createIdempotencyStore(service.db, service.config.idempotencyTtlSeconds);
  const idempotencyLock = createIdempotencyLock(service.cache);
  const trustedProxies = parseList(service.config.trustedProxies);
  const defaultFunction = functions.length === 1 ? (functions[0]?.name ?? "all") : "all";

  app.use("*", async (c, next) => {
    const started = performance.now();
    const requestId = requestIdFrom(c.req.header("x-request-id"));
    // The server span; its traceparent (the caller's while tracing is off) goes on to events and provider calls.
    const callerTraceparent = validTraceparent(c.req.header("traceparent"));
    const probe = PROBE_PATHS.has(c.req.path);
    const span = startRequestSpan(c.req.method, () => c.req.raw.headers, callerTraceparent, !probe);
    c.set("requestId", requestId);
    c.set("traceparent", span.traceparent);
    // Labels and span names take the route template, never the raw path: ids in paths would be a new series each.
    c.set("route", probe ? c.req.path : "unmatched");
    c.set("fn", defaultFunction);
    // API answers and problems carry it through answer().
    answerHeaders(c)["X-Request-Id"] = requestId;
    await span.run(next);
    // The answers Hono builds (probes, the webhook function's own routes) get it on their own headers. Through
    // c.header(), a header added to a finished response makes Hono rebuild it, and @hono/node-server then streams
    // the copy instead of writing it at once.
    if (!answeredHeaders(c)) setRequestIdOn(c, requestId);
    const route = c.get("route");
    span.end(route, c.res.status);
    const labels = { function: c.get("fn"), method: c.req.method, route };
    const seconds = (performance.now() - started) / 1000;
    metrics.httpRequests.inc({ ...labels, status: String(c.res.status) });
    metrics.httpDuration.observe(labels, seconds);
    // Probes run every few seconds per instance: logged only when they fail.
    const quiet = probe && c.res.status < 400;
    if (service.log.isLevelEnabled("info") && !quiet) {
      service.log.info({
        request_id: requestId,
        trace_id: span.traceId,
        method: c.req.method,
        route,
        status: c.res.status,
        duration_ms: Math.round(seconds * 1000),
        merchant: (c as Context).get("merchant" as never),
      });
    }
  });

  app.onError((error, c) => {
    if (error instanceof ApiError) return problemResponse(c, error);
    if (isUnavailable(error)) {
      service.log.warn(
        { request_id: c.get("requestId"), err: (error as Error).message },
        "dependency unavailable",
      );
      return problemResponse(
        c,
        new ApiError("service_unavailable", "The service is temporarily unavailable.", { retryAfter: 5 }),
      );
    }
    service.log.error({ request_id: c.get("requestId"), err: error }, "unhandled error");
    return problemResponse(c, new ApiError("internal", "Something went wrong on our side."));
  });

  app.notFound((c) =>
    problemResponse(c, new ApiError("not_found", `No route for ${c.req.method} ${c.req.path}.`)),
  );

  const probes = probeRoutes(service, options.readiness ?? (() => providerReadiness(service.providers)));
  app.use("/health", async (c, next) => {
    c.set("route", "/health");
    await next();
  });
  app.route("/", probes);

  for (const fn of functions) {
    for (const route of fn.routes) registerRoute(app, fn.name, route);
    fn.mount?.(app as unknown as Hono, service);
  }
  return app;

  function registerRoute(target: Hono<Env>, fnName: string, spec: RouteSpec) {
    const label = (c: Context<Env>) => {
      c.set("route", spec.path);
      c.set("fn", fnName);
    };
    if (spec.method === "get") {
      target.get(spec.path, (c) => {
        label(c);
        return handle(c, fnName, spec);
      });
      return;
    }
    const handlers = [
      // Labelled before the body limit, so a refused body is counted under its route.
      async (c: Context<Env>, next: () => Promise<void>) => {
        label(c);
        await next();
      },
      bodyLimit({
        maxSize: MAX_BODY_BYTES,
        onError: () => {
          throw new ApiError("payload_too_large", `Request bodies are limited to ${MAX_BODY_BYTES} bytes.`);
        },
      }),
      (c: Context<Env>) => handle(c, fnName, spec),
    ] as const;
    target.on(spec.method.toUpperCase(), spec.path, ...(handlers as unknown as [never]));
  }

  async function handle(c: Context<Env>, fnName: string, spec: RouteSpec): Promise<Response> {
    let principal: Awaited<ReturnType<typeof authenticate>>;
    try {
      principal = await authenticate(c.req.header("authorization"));
    } catch (error) {
      // Unauthenticated traffic is limited per client address, so credential guessing is throttled too.
      const limit = await rateLimit("ip", clientIp(c, trustedProxies));
      Object.assign(answerHeaders(c), limit.headers);
      throw error;
    }
    requireScope(principal, spec.scope);
    c.set("merchant" as never, principal.merchantId as never);
    const limit = await rateLimit("merchant", principal.merchantId);
    Object.assign(answerHeaders(c), limit.headers);

    const rawBody = spec.method === "post" ? await readBody(c) : "";
    const params = spec.params ? parseParams(spec.params, c.req.param()) : undefined;
    const query = spec.query ? parseWith(spec.query, c.req.query(), "query") : undefined;
    let body: unknown;
    if (spec.body) {
      const json = parseJson(rawBody);
      if (tooDeep(json)) {
        throw new ApiError("validation_failed", "The request body nests too deeply.", {
          errors: [{ path: "body", message: `must nest at most ${MAX_JSON_DEPTH} levels` }],
        });
      }
      const pans = findPans(json);
      if (pans.length > 0)
        throw new ApiError(
          "validation_failed",
          "Card numbers are never accepted; use a payment method token.",
          { errors: pans },
        );
      body = parseWith(spec.body, json);
    }

    const actor: Actor = {
      merchantId: principal.merchantId,
      requestId: c.get("requestId"),
      traceparent: c.get("traceparent"),
      type: "merchant",
      source: fnName,
    };
    const ctx = { ...service, actor };
    const run = async (): Promise<Response> => {
      try {
        const result = await spec.handler({ params, body, query, ctx, c: c as unknown as Context } as never);
        return answer(c, jsonBody(result), spec.status, JSON_CONTENT);
      } catch (error) {
        if (error instanceof ApiError) return problemResponse(c, error);
        throw error;
      }
    };

    const key = spec.method === "post" ? c.req.header("idempotency-key") : undefined;
    if (key === undefined) return run();
    if (!validIdempotencyKey(key)) {
      throw new ApiError("validation_failed", "Idempotency-Key must be 1–255 printable ASCII characters.", {
        errors: [{ path: "header.Idempotency-Key", message: "must be 1–255 printable ASCII characters" }],
      });
    }
    const fingerprint = requestFingerprint(c.req.method, c.req.path, rawBody);
    // Redis answers duplicates of a request in flight; PostgreSQL decides everything else.
    const releaseLock = await idempotencyLock.acquire(principal.merchantId, key, fingerprint);
    try {
      const claim = await idempotency.claim(principal.merchantId, key, fingerprint);
      if (claim.kind === "replay") {
        metrics.idempotencyReplays.inc({ function: fnName });
        const contentType = claim.response.status >= 400 ? "application/problem+json" : "application/json";
        return answer(c, claim.response.body, claim.response.status, {
          "Content-Type": contentType,
          "Idempotent-Replayed": "true",
        });
      }
      actor.idempotencyKey = key;
      actor.successStatus = spec.status;
      const recovered = claim.recoveryPoint ? recoveredObject(claim.recoveryPoint, spec) : undefined;
      let response: Response;
      try {
        response = recovered
          ? answer(
              c,
              jsonBody(await (spec.recover as NonNullable<RouteSpec["recover"]>)(ctx, recovered)),
              spec.status,
              JSON_CONTENT,
            )
          : await run();
      } catch (error) {
        await idempotency.complete(principal.merchantId, key, { status: 500, body: "" }).catch(() => {});
        throw error;
      }
      // The change that made this answer stored it with itself (a create, a confirm's settle): nothing left to write.
      if (actor.answerStored && response.status === spec.status) return response;
      // Read once and answer with the same text: cloning the Response would tee its stream on every request.
      const text = await response.text();
      try {
        await idempotency.complete(principal.merchantId, key, { status: response.status, body: text });
      } catch (error) {
        // What ran is committed: a 503 now would tell the client that nothing was and invite a retry that runs it
        // again. The answer goes out; the key stays in flight until its lease ends.
        if (!isUnavailable(error)) throw error;
        service.log.warn(
          { request_id: c.get("requestId"), err: (error as Error).message },
          "idempotency result not stored: database unavailable",
        );
      }
      return new Response(text, { status: response.status, headers: answeredHeaders(c) ?? response.headers });
    } finally {
      await releaseLock();
    }
  }
}

/** X-Request-Id on an answer Hono built, on its own headers; see the middleware above. */
function setRequestIdOn(c: Context, requestId: string): void {
  try {
    c.res.headers.set("X-Request-Id", requestId);
  } catch {
    // Immutable headers (Response.redirect(), a fetched Response): Hono copies the answer into one it can change.
    c.header("X-Request-Id", requestId);
  }
}

/**
 * The id a dead earlier run of this request committed, when this route can answer with it; other routes run again
 * (their state machine turns a repeated change into the documented 409).
 */
function recoveredObject(recoveryPoint: string, spec: RouteSpec): string | undefined {
  if (!spec.recover) return undefined;
  const [, id] = recoveryPoint.split(":", 2);
  return id;
}

/** A malformed id names nothing that exists: 404, like any unknown id. */
function parseParams(schema: RouteSpec["response"], params: Record<string, string>): unknown {
  try {
    return parseWith(schema, params, "path");
  } catch {
    throw new ApiError("not_found", "No such object.");
  }
}

async function readBody(c: Context): Promise<string> {
  const text = await c.req.text();
  if (text.length === 0) return "";
  const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json" && !type?.endsWith("+json")) {
    throw new ApiError("unsupported_media_type", "Request bodies must be application/json.");
  }
  return text;
}

function parseJson(raw: string): unknown {
  if (raw === "") return {};
  try {
    return JSON.parse(raw);
  } catch {
    throw new ApiError("validation_failed", "The request body is not valid JSON.", {
      errors: [{ path: "body", message: "malformed JSON" }],
    });
  }
}
