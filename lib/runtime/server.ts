import { serve } from "@hono/node-server";
import type { Config } from "../config/index.ts";
import { buildApp } from "../http/app.ts";
import { PROBE_PATHS, refreshGauges } from "../http/probes.ts";
import type { FunctionDefinition } from "../http/route.ts";
import type { ServiceContext } from "../payments/context.ts";
import { initializeMetrics } from "../telemetry/baseline.ts";
import { refreshMetricsBeforeExport, shutdownTelemetry, startTelemetry } from "../telemetry/preload.ts";
import { withDevSecret } from "./dev-secret.ts";
import { mintToken } from "./dev-token.ts";
import { createService } from "./service.ts";

// Knative sends SIGTERM and waits terminationGracePeriodSeconds (default 30 s) before SIGKILL.
const SHUTDOWN_DEADLINE_MS = 20_000;
// What can wait for the first customer's answer (the Redis client) waits at most this long after listening.
const LOAD_AFTER_IDLE_MS = 1_000;

/** Which functions a process serves: its own bundle's definition, or FUNCTION_TARGET's through loadFunctions. */
export type FunctionsOf = (config: Config) => FunctionDefinition[] | Promise<FunctionDefinition[]>;

/**
 * Serves one function or all of them on @hono/node-server; stops gracefully on SIGTERM. The caller says which
 * (`functionsOf`), so a function's own bundle holds no other function's code.
 */
export async function startServer(
  loaded: Config,
  functionsOf: FunctionsOf,
): Promise<{ close: () => Promise<void>; service: ServiceContext }> {
  const config = withDevSecret(loaded);
  const firstAnswer = new FirstAnswer();
  const service = await createService(config, { cacheLoadsAfter: firstAnswer.sent });
  // The first connection's handshake (TCP, TLS, authentication) runs while the function's code loads, so the
  // readiness probe and the first request find it open. A failure here is the probe's to report.
  service.db.ping().catch(() => {});
  // OpenTelemetry is loaded only when an exporter is configured. It patches the database and Redis clients'
  // prototypes, so the pools createService just opened are traced too: no need to start it before them.
  await startTelemetry(config, service.log);
  initializeMetrics(service.providers);
  // Pushed metrics are never scraped, so the database-derived gauges are refreshed before each export.
  refreshMetricsBeforeExport(() => refreshGauges(service));
  const app = buildApp(service, await functionsOf(config));
  const inFlight = new InFlight();
  let closing: Promise<void> | undefined;
  const server = serve({
    fetch: (request, env) =>
      inFlight.track(async () => {
        const response = await app.fetch(request, env);
        // Knative's queue-proxy probes readiness just before the first request: a probe's answer is not it.
        if (firstAnswer.waiting && !PROBE_PATHS.has(new URL(request.url).pathname)) firstAnswer.done();
        // After SIGTERM a keep-alive connection that keeps carrying requests is never idle, and close() waited for
        // the deadline (then exit 1, nothing flushed): each answer now tells its client to reconnect elsewhere.
        return closing ? withConnectionClose(response) : response;
      }),
    port: config.port,
    hostname: "0.0.0.0",
  });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  service.log.info({ port: config.port, function: config.functionTarget, db: config.db.driver }, "listening");
  service.outbox?.start();
  firstAnswer.noLaterThan(LOAD_AFTER_IDLE_MS);
  if (config.auth.generatedSecret && config.auth.secret) {
    const token = await mintToken(config.auth.secret, "acct_dev");
    // Development only: no JWT_SECRET was set, so this process made one up and hands out a token for it.
    process.stdout.write(
      `\nDevelopment token (merchant acct_dev, both scopes, 24 h):\n  export TOKEN=${token}\n\n`,
    );
  }

  const close = () =>
    (closing ??= (async () => {
      service.log.info("shutting down");
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive sockets would hold close() open; idle ones are dropped, busy ones finish first.
        (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      });
      // A handler whose client went away keeps running after its socket closed: let it finish its writes
      // before the pools it uses are closed.
      await inFlight.drained();
      await service.outbox?.stop().catch(() => {});
      // The final push below carries the database-derived gauges as last read: the pool is gone by then.
      refreshMetricsBeforeExport(async () => {});
      await service.db.close().catch(() => {});
      await service.cache.close().catch(() => {});
      // Last: the final metrics push then includes everything above, and a scaled-down pod loses no counts.
      await shutdownTelemetry();
    })());

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      const deadline = setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS);
      deadline.unref();
      close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
  return { close, service };
}

function withConnectionClose(response: Response): Response {
  const headers = new Headers(response.headers);
  headers.set("Connection", "close");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

/** Counts requests being handled, so shutdown can wait for the last one. */
class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];

  async track<T>(handle: () => T | Promise<T>): Promise<T> {
    this.count++;
    try {
      return await handle();
    } finally {
      this.count--;
      if (this.count === 0) for (const wake of this.waiters.splice(0)) wake();
    }
  }

  drained(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

/**
 * Settles after the first response other than a probe's is handed to the server (or after a delay if none comes):
 * what a cold start defers until then is loaded once the first customer has their answer.
 */
class FirstAnswer {
  private settle = () => {};
  readonly sent = new Promise<void>((resolve) => {
    this.settle = resolve;
  });

  waiting = true;

  done() {
    if (!this.waiting) return;
    this.waiting = false;
    // The next turn of the event loop: the response is written out first.
    setImmediate(this.settle);
  }

  noLaterThan(ms: number) {
    setTimeout(this.settle, ms).unref();
  }
}
