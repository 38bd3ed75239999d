import * as v from "valibot";

/** Every environment variable the service reads. Deployment manifests are checked against this list. */
export const CONFIG_VARIABLES = [
  "NODE_ENV",
  "PORT",
  "LOG_LEVEL",
  "FUNCTION_TARGET",
  "DATA_DIR",
  "DATABASE_URL",
  "DB_DRIVER",
  "POSTGRES_HOST",
  "POSTGRES_PORT",
  "POSTGRES_USERNAME",
  "POSTGRES_PASSWORD",
  "POSTGRES_DATABASE",
  "POSTGRES_SSL",
  "POSTGRES_SSL_CA",
  "DB_SCHEMA",
  "DB_POOL_MAX",
  "DB_CONNECT_TIMEOUT_MS",
  "DB_STATEMENT_TIMEOUT_MS",
  "DB_PREPARED_STATEMENTS",
  "NEON_WS_PROXY",
  "REDIS_URL",
  "REDIS_HOST",
  "REDIS_PORT",
  "REDIS_PASSWORD",
  "REDIS_KEY_PREFIX",
  "JWT_SECRET",
  "JWT_JWKS_URL",
  "JWT_ISSUER",
  "JWT_AUDIENCE",
  "RATE_LIMIT_RPS",
  "RATE_LIMIT_BURST",
  "IDEMPOTENCY_TTL_SECONDS",
  "PROVIDER_ROUTES",
  "SANDBOX_WEBHOOK_SECRET",
  "SANDBOX_LATENCY_MS",
  "SANDBOX_ASYNC_DELAY_MS",
  "PROVIDER_TIMEOUT_MS",
  "PROVIDER_RETRIES",
  "PROVIDER_CIRCUIT_THRESHOLD",
  "PROVIDER_CIRCUIT_RESET_SECONDS",
  "PROVIDER_CONCURRENCY",
  "STRIPE_SECRET_KEY",
  "STRIPE_WEBHOOK_SECRET",
  "STRIPE_API_BASE",
  "YOOKASSA_SHOP_ID",
  "YOOKASSA_SECRET_KEY",
  "YOOKASSA_API_BASE",
  "YOOKASSA_ALLOWED_IPS",
  "TRUSTED_PROXIES",
  "PUBLIC_BASE_URL",
  "RECONCILE_AFTER_SECONDS",
  "K_SINK",
  "K_CE_OVERRIDES",
  "OUTBOX_POLL_INTERVAL_MS",
  "OUTBOX_RETENTION_HOURS",
  "PROVIDER_EVENT_RETENTION_DAYS",
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_SERVICE_NAME",
  "OTEL_METRICS_EXPORTER",
  "OTEL_TRACES_EXPORTER",
  "OTEL_METRIC_EXPORT_INTERVAL",
  "OTEL_RESOURCE_ATTRIBUTES",
  "POD_NAME",
  "POD_NAMESPACE",
  "K_SERVICE",
  "K_REVISION",
] as const;

/** Variables production refuses to start without; `A|B` means one of them. */
export const REQUIRED_IN_PRODUCTION = ["JWT_SECRET|JWT_JWKS_URL", "DATABASE_URL|POSTGRES_HOST"];

export type EnvName = (typeof CONFIG_VARIABLES)[number];
export type Env = Partial<Record<EnvName, string>>;

const int = (min: number, max: number) =>
  v.pipe(
    v.string(),
    v.trim(),
    v.regex(/^\d+$/, "must be a whole number"),
    v.transform(Number),
    v.minValue(min),
    v.maxValue(max),
  );
const url = v.pipe(v.string(), v.url("must be a URL"));
// One exporter per signal: the SDK is only loaded when one of them is otlp or console.
const otelExporter = v.picklist(["otlp", "console", "none"], "must be otlp, console or none");

/** The schema of the raw environment; each entry is optional and gets its default in `loadConfig`. */
export const EnvSchema = v.object({
  NODE_ENV: v.optional(
    v.picklist(["development", "test", "production"], "must be development, test or production"),
  ),
  PORT: v.optional(int(1, 65535)),
  LOG_LEVEL: v.optional(
    v.picklist(["fatal", "error", "warn", "info", "debug", "trace", "silent"], "must be a pino level"),
  ),
  FUNCTION_TARGET: v.optional(
    v.picklist(
      ["all", "create", "confirm", "cancel", "status", "webhook", "health"],
      "must be all or a function name",
    ),
  ),
  DATA_DIR: v.optional(v.string()),
  DATABASE_URL: v.optional(
    v.pipe(v.string(), v.regex(/^(postgres(ql)?|memory|file):/, "must be a postgres:// URL")),
  ),
  DB_DRIVER: v.optional(v.picklist(["pglite", "pg", "neon"], "must be pglite, pg or neon")),
  POSTGRES_HOST: v.optional(v.string()),
  POSTGRES_PORT: v.optional(int(1, 65535)),
  POSTGRES_USERNAME: v.optional(v.string()),
  POSTGRES_PASSWORD: v.optional(v.string()),
  POSTGRES_DATABASE: v.optional(v.string()),
  POSTGRES_SSL: v.optional(
    v.picklist(
      ["true", "false", "1", "0", "disable", "require", "verify-ca", "verify-full", "no-verify"],
      "must be true, false or an sslmode (disable, require, verify-ca, verify-full, no-verify)",
    ),
  ),
  POSTGRES_SSL_CA: v.optional(v.string()),
  DB_SCHEMA: v.optional(
    v.pipe(v.string(), v.regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case identifier")),
  ),
  DB_POOL_MAX: v.optional(int(1, 200)),
  DB_CONNECT_TIMEOUT_MS: v.optional(int(100, 120_000)),
  DB_STATEMENT_TIMEOUT_MS: v.optional(int(100, 600_000)),
  DB_PREPARED_STATEMENTS: v.optional(v.picklist(["true", "false", "1", "0"], "must be true or false")),
  NEON_WS_PROXY: v.optional(v.string()),
  REDIS_URL: v.optional(v.pipe(v.string(), v.regex(/^rediss?:\/\//, "must be a redis:// URL"))),
  REDIS_HOST: v.optional(v.string()),
  REDIS_PORT: v.optional(int(1, 65535)),
  REDIS_PASSWORD: v.optional(v.string()),
  REDIS_KEY_PREFIX: v.optional(
    v.pipe(v.string(), v.regex(/^[\w:.-]{1,64}$/, "must be 1–64 of [A-Za-z0-9_:.-]")),
  ),
  JWT_SECRET: v.optional(v.pipe(v.string(), v.minLength(16, "must be at least 16 characters"))),
  JWT_JWKS_URL: v.optional(url),
  JWT_ISSUER: v.optional(v.string()),
  JWT_AUDIENCE: v.optional(v.string()),
  RATE_LIMIT_RPS: v.optional(int(1, 1_000_000)),
  RATE_LIMIT_BURST: v.optional(int(1, 1_000_000)),
  IDEMPOTENCY_TTL_SECONDS: v.optional(int(60, 30 * 86_400)),
  PROVIDER_ROUTES: v.optional(v.string()),
  SANDBOX_WEBHOOK_SECRET: v.optional(v.string()),
  SANDBOX_LATENCY_MS: v.optional(int(0, 60_000)),
  SANDBOX_ASYNC_DELAY_MS: v.optional(int(0, 3_600_000)),
  PROVIDER_TIMEOUT_MS: v.optional(int(100, 120_000)),
  PROVIDER_RETRIES: v.optional(int(0, 10)),
  PROVIDER_CIRCUIT_THRESHOLD: v.optional(int(1, 1_000)),
  PROVIDER_CIRCUIT_RESET_SECONDS: v.optional(int(1, 3_600)),
  PROVIDER_CONCURRENCY: v.optional(int(1, 10_000)),
  STRIPE_SECRET_KEY: v.optional(v.string()),
  STRIPE_WEBHOOK_SECRET: v.optional(v.string()),
  STRIPE_API_BASE: v.optional(url),
  YOOKASSA_SHOP_ID: v.optional(v.string()),
  YOOKASSA_SECRET_KEY: v.optional(v.string()),
  YOOKASSA_API_BASE: v.optional(url),
  YOOKASSA_ALLOWED_IPS: v.optional(v.string()),
  TRUSTED_PROXIES: v.optional(v.string()),
  PUBLIC_BASE_URL: v.optional(url),
  RECONCILE_AFTER_SECONDS: v.optional(int(1, 86_400)),
  K_SINK: v.optional(url),
  K_CE_OVERRIDES: v.optional(
    v.pipe(
      v.string(),
      v.check(
        validCeOverrides,
        'must be JSON like {"extensions":{"name":"value"}} (lower-case a-z0-9 names)',
      ),
    ),
  ),
  OUTBOX_POLL_INTERVAL_MS: v.optional(int(0, 3_600_000)),
  OUTBOX_RETENTION_HOURS: v.optional(int(1, 24 * 366)),
  // At least a week: shorter would forget notifications a provider may still be retrying.
  PROVIDER_EVENT_RETENTION_DAYS: v.optional(int(7, 3_660)),
  OTEL_EXPORTER_OTLP_ENDPOINT: v.optional(url),
  OTEL_SERVICE_NAME: v.optional(v.string()),
  OTEL_METRICS_EXPORTER: v.optional(otelExporter),
  OTEL_TRACES_EXPORTER: v.optional(otelExporter),
  OTEL_METRIC_EXPORT_INTERVAL: v.optional(int(1_000, 3_600_000)),
  OTEL_RESOURCE_ATTRIBUTES: v.optional(
    v.pipe(v.string(), v.regex(/^[^=,]+=[^,]*(,[^=,]+=[^,]*)*$/, "must look like key=value,key=value")),
  ),
  POD_NAME: v.optional(v.string()),
  POD_NAMESPACE: v.optional(v.string()),
  K_SERVICE: v.optional(v.string()),
  K_REVISION: v.optional(v.string()),
});

/** Knative's K_CE_OVERRIDES: only `extensions`, names as CloudEvents allows them, string values. */
function validCeOverrides(value: string): boolean {
  try {
    const parsed = JSON.parse(value) as { extensions?: unknown };
    const extensions = parsed?.extensions ?? {};
    return (
      typeof extensions === "object" &&
      extensions !== null &&
      !Array.isArray(extensions) &&
      Object.entries(extensions).every(([k, v]) => /^[a-z0-9]{1,20}$/.test(k) && typeof v === "string")
    );
  } catch {
    return false;
  }
}
