import { CONFIG_VARIABLES } from "../lib/config/env.ts";

export const JWT_SECRET = "bench-secret-not-for-production-0123456789";
// The bench measures throughput and latency, not the limiter: it runs (and costs) as usual but never refuses.
export const RATE_LIMIT = "1000000";
// Request logs cost a JSON line per request; production runs at info, the bench at warn (said in the report).
export const LOG_LEVEL = "warn";

export interface ServiceBackends {
  embedded: boolean;
  /** postgres:// URL of the scratch database, or file:<dir> of the embedded one. */
  databaseUrl: string;
  redisUrl?: string;
  redisKeyPrefix: string;
  pool: number;
  providerLatencyMs: number;
  /** K_SINK: the bench's event sink, so the service sends its outbox as it does in the cluster. */
  eventSink?: string;
  /** --set NAME=VALUE: applied last, over the bench's own settings. */
  overrides?: Record<string, string>;
}

/**
 * The environment of a service child: the caller's environment minus every variable the service reads (a
 * DATABASE_URL in the shell must not send the bench to another database), plus the bench's own settings.
 */
export function serviceEnv(
  backends: ServiceBackends,
  port: number,
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of CONFIG_VARIABLES) delete env[name];
  delete env.NODE_OPTIONS;
  return {
    ...env,
    // Production refuses PGlite, so the embedded run is a development one (and migrates at start-up).
    NODE_ENV: backends.embedded ? "development" : "production",
    PORT: String(port),
    LOG_LEVEL,
    JWT_SECRET,
    RATE_LIMIT_RPS: RATE_LIMIT,
    RATE_LIMIT_BURST: RATE_LIMIT,
    DATABASE_URL: backends.databaseUrl,
    DB_POOL_MAX: String(backends.pool),
    SANDBOX_LATENCY_MS: String(backends.providerLatencyMs),
    // Here one process takes all the bench's connections; in the cluster an instance takes at most its
    // containerConcurrency (50), which the default per-provider bulkhead of 64 is sized for.
    PROVIDER_CONCURRENCY: "2000",
    REDIS_KEY_PREFIX: backends.redisKeyPrefix,
    ...(backends.redisUrl ? { REDIS_URL: backends.redisUrl } : {}),
    ...(backends.eventSink ? { K_SINK: backends.eventSink } : {}),
    ...extra,
    ...backends.overrides,
  };
}
