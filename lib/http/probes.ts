import { Hono } from "hono";
import { readOutboxLag } from "../events/outbox-store.ts";
import type { ServiceContext } from "../payments/context.ts";
import { metrics, registry } from "../telemetry/metrics.ts";

type CheckStatus = "ok" | "degraded" | "down";

const withTimeout = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error("timeout")), ms).unref()),
  ]);

// Events older than this mean delivery is stuck; only meaningful where a sink is configured.
const OUTBOX_LAG_LIMIT_SECONDS = 300;

/** The paths probes and scrapers call: not a customer's request (quiet in logs, no first-answer for a cold start). */
export const PROBE_PATHS = new Set(["/health", "/ready", "/metrics"]);

/**
 * Liveness (/health: the process only; a database outage must not get pods killed), readiness (/ready:
 * dependencies; the queue-proxy stops routing to a pod that fails it) and /metrics, on every function.
 */
export function probeRoutes(
  service: ServiceContext,
  extraChecks: () => Record<string, CheckStatus> = () => ({}),
) {
  const app = new Hono();
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/ready", async (c) => {
    const checks: Record<string, CheckStatus> = {};
    checks.database = await withTimeout(service.db.ping(), 1_000).then(
      () => "ok" as const,
      () => "down" as const,
    );
    checks.cache = await withTimeout(service.cache.ping(), 500).then(
      () => "ok" as const,
      () => "degraded" as const,
    );
    metrics.integrationUp.set({ integration: "database" }, checks.database === "ok" ? 1 : 0);
    metrics.integrationUp.set({ integration: "cache" }, checks.cache === "ok" ? 1 : 0);
    if (service.config.events.sink && checks.database === "ok") {
      const lag = await outboxLagSeconds(service).catch(() => 0);
      checks.outbox = lag > OUTBOX_LAG_LIMIT_SECONDS ? "degraded" : "ok";
    }
    Object.assign(checks, extraChecks());
    const ready = checks.database === "ok";
    return c.json(
      {
        status: ready ? (Object.values(checks).every((s) => s === "ok") ? "ok" : "degraded") : "unavailable",
        checks,
      },
      ready ? 200 : 503,
    );
  });
  app.get("/metrics", async (c) => {
    await refreshGauges(service).catch(() => {});
    return c.text(await registry.metrics(), 200, { "Content-Type": registry.contentType });
  });
  return app;
}

export async function outboxLagSeconds(service: ServiceContext): Promise<number> {
  return (await readOutboxLag(service.db)).lagSeconds;
}

/** Gauges that are read from the database at scrape time, so every instance reports the same truth. */
export async function refreshGauges(service: ServiceContext): Promise<void> {
  const { rows } = await service.db.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM payments
     WHERE status IN ('requires_confirmation', 'processing', 'requires_action', 'requires_capture') GROUP BY status`,
  );
  for (const status of ["requires_confirmation", "processing", "requires_action", "requires_capture"]) {
    metrics.activePayments.set({ status }, rows.find((r) => r.status === status)?.n ?? 0);
  }
  if (service.config.events.sink) await outboxLagSeconds(service);
}
