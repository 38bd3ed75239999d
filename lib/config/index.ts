import { randomBytes } from "node:crypto";
import * as v from "valibot";
import type { Retention } from "../db/retention.ts";
import { type Env, EnvSchema, REQUIRED_IN_PRODUCTION } from "./env.ts";

export type FunctionName = "create" | "confirm" | "cancel" | "status" | "webhook" | "health";
export type DbDriver = "pglite" | "pg" | "neon";

export interface DbConfig {
  driver: DbDriver;
  /** postgres:// URL for pg and neon. */
  url?: string;
  /** PGlite data directory; undefined keeps the database in memory. */
  dataDir?: string;
  poolMax: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  /** Run parameterized statements as named (prepared) statements, parsed and planned once per connection. */
  preparedStatements: boolean;
  /** TLS for the pg driver; false means plaintext (loopback, or a private in-cluster network). */
  ssl: DbTls | false;
  neonWsProxy?: string;
  /** PostgreSQL schema to use (search_path); tests give each run its own. */
  schema?: string;
}

/** How the server's certificate is checked; sslmode from DATABASE_URL or POSTGRES_SSL decides. */
export interface DbTls {
  /** Check the certificate chain; false only for an explicit sslmode=no-verify. */
  verifyChain: boolean;
  /** Check that the certificate names the host (all modes but verify-ca and no-verify). */
  verifyHost: boolean;
  /** The CA that signed the server's certificate: PEM text or a file path (POSTGRES_SSL_CA or sslrootcert). */
  ca?: string;
  /** Client certificate and key files (sslcert, sslkey in the URL). */
  cert?: string;
  key?: string;
}

export interface Config {
  env: "development" | "test" | "production";
  port: number;
  logLevel: string;
  functionTarget: FunctionName | "all";
  db: DbConfig;
  redisUrl?: string;
  /** Prefix of every Redis key, so services (and test runs) sharing one Redis never see each other's keys. */
  redisKeyPrefix: string;
  auth: {
    secret?: Uint8Array;
    jwksUrl?: string;
    issuer?: string;
    audience?: string;
    /** True when no secret was configured and a development one was made up at start-up. */
    generatedSecret: boolean;
  };
  rateLimit: { rps: number; burst: number };
  idempotencyTtlSeconds: number;
  providers: {
    routes?: string;
    sandbox: { webhookSecret: string; latencyMs: number; asyncDelayMs: number };
    /** Per provider and instance: timeout per attempt, retries, circuit breaker, concurrent calls. */
    resilience: {
      timeoutMs: number;
      retries: number;
      circuitThreshold: number;
      circuitResetSeconds: number;
      concurrency: number;
    };
    stripe?: { secretKey: string; webhookSecret?: string; apiBase?: string };
    yookassa?: { shopId: string; secretKey: string; apiBase?: string; allowedIps?: string };
  };
  trustedProxies?: string;
  publicBaseUrl: string;
  reconcileAfterSeconds: number;
  /** sink: K_SINK (set by a SinkBinding); pollIntervalMs: the dispatcher's timer, 0 = only on commit and drain. */
  events: { sink?: string; ceOverrides?: string; pollIntervalMs: number };
  /** What each reconcile run deletes, and after how long. */
  retention: Retention;
  otel: OtelConfig;
}

/**
 * OpenTelemetry export. A signal is on when its OTEL_*_EXPORTER says so, or, unset, when an OTLP endpoint is
 * configured; with both off the SDK is never loaded.
 */
export interface OtelConfig {
  endpoint?: string;
  serviceName?: string;
  traces: "otlp" | "console" | "none";
  metrics: "otlp" | "console" | "none";
  metricExportIntervalMs: number;
  /** OTEL_RESOURCE_ATTRIBUTES, raw. */
  resourceAttributes?: string;
  /** Downward API values (POD_NAME, POD_NAMESPACE) and Knative's own K_SERVICE / K_REVISION. */
  podName?: string;
  podNamespace?: string;
  knativeService?: string;
  knativeRevision?: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Parses the environment once. Throws a ConfigError whose message is one line naming the variable,
 * so a bad deployment stops at start-up instead of failing on the first request.
 */
export function loadConfig(raw: NodeJS.ProcessEnv | Env = process.env): Config {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.entries)) {
    const value = raw[key as keyof Env];
    if (value !== undefined && value !== "") picked[key] = value;
  }
  const parsed = v.safeParse(EnvSchema, picked);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const name = issue.path?.[0]?.key ?? "environment";
    throw new ConfigError(`Invalid configuration: ${String(name)} ${issue.message}`);
  }
  const e = parsed.output;
  const env = e.NODE_ENV ?? "development";

  if (env === "production") {
    for (const group of REQUIRED_IN_PRODUCTION) {
      const names = group.split("|") as (keyof typeof e)[];
      if (!names.some((n) => e[n] !== undefined)) {
        throw new ConfigError(`Invalid configuration: ${names.join(" or ")} must be set in production`);
      }
    }
  }

  const db = dbConfig(e, env);
  const generatedSecret = !e.JWT_SECRET && !e.JWT_JWKS_URL;
  const secret = e.JWT_SECRET
    ? new TextEncoder().encode(e.JWT_SECRET)
    : generatedSecret
      ? new Uint8Array(randomBytes(32))
      : undefined;
  const port = e.PORT ?? 3005;

  return {
    env,
    port,
    logLevel: e.LOG_LEVEL ?? (env === "test" ? "silent" : "info"),
    functionTarget: e.FUNCTION_TARGET ?? "all",
    db,
    redisUrl: redisUrl(e),
    redisKeyPrefix: e.REDIS_KEY_PREFIX ?? "payments:",
    auth: {
      secret,
      jwksUrl: e.JWT_JWKS_URL,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      generatedSecret,
    },
    rateLimit: { rps: e.RATE_LIMIT_RPS ?? 200, burst: e.RATE_LIMIT_BURST ?? 400 },
    idempotencyTtlSeconds: e.IDEMPOTENCY_TTL_SECONDS ?? 86_400,
    providers: {
      routes: e.PROVIDER_ROUTES,
      sandbox: {
        webhookSecret: e.SANDBOX_WEBHOOK_SECRET ?? "whsec_sandbox_development",
        latencyMs: e.SANDBOX_LATENCY_MS ?? 0,
        asyncDelayMs: e.SANDBOX_ASYNC_DELAY_MS ?? 2_000,
      },
      resilience: {
        timeoutMs: e.PROVIDER_TIMEOUT_MS ?? 10_000,
        retries: e.PROVIDER_RETRIES ?? 2,
        circuitThreshold: e.PROVIDER_CIRCUIT_THRESHOLD ?? 5,
        circuitResetSeconds: e.PROVIDER_CIRCUIT_RESET_SECONDS ?? 30,
        // Above a function's containerConcurrency (50): the bulkhead guards against a pile-up, not normal load.
        concurrency: e.PROVIDER_CONCURRENCY ?? 64,
      },
      stripe: e.STRIPE_SECRET_KEY
        ? {
            secretKey: e.STRIPE_SECRET_KEY,
            webhookSecret: e.STRIPE_WEBHOOK_SECRET,
            apiBase: e.STRIPE_API_BASE,
          }
        : undefined,
      yookassa:
        e.YOOKASSA_SHOP_ID && e.YOOKASSA_SECRET_KEY
          ? {
              shopId: e.YOOKASSA_SHOP_ID,
              secretKey: e.YOOKASSA_SECRET_KEY,
              apiBase: e.YOOKASSA_API_BASE,
              allowedIps: e.YOOKASSA_ALLOWED_IPS,
            }
          : undefined,
    },
    trustedProxies: e.TRUSTED_PROXIES,
    publicBaseUrl: (e.PUBLIC_BASE_URL ?? `http://localhost:${port}`).replace(/\/$/, ""),
    reconcileAfterSeconds: e.RECONCILE_AFTER_SECONDS ?? 60,
    events: {
      sink: e.K_SINK,
      ceOverrides: e.K_CE_OVERRIDES,
      pollIntervalMs: e.OUTBOX_POLL_INTERVAL_MS ?? 5_000,
    },
    retention: {
      outboxHours: e.OUTBOX_RETENTION_HOURS ?? 168,
      providerEventDays: e.PROVIDER_EVENT_RETENTION_DAYS ?? 90,
    },
    otel: {
      endpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
      serviceName: e.OTEL_SERVICE_NAME,
      traces: e.OTEL_TRACES_EXPORTER ?? (e.OTEL_EXPORTER_OTLP_ENDPOINT ? "otlp" : "none"),
      metrics: e.OTEL_METRICS_EXPORTER ?? (e.OTEL_EXPORTER_OTLP_ENDPOINT ? "otlp" : "none"),
      // Shorter than the OpenTelemetry default (60 s): a scale-to-zero instance may live less than a minute.
      metricExportIntervalMs: e.OTEL_METRIC_EXPORT_INTERVAL ?? 15_000,
      resourceAttributes: e.OTEL_RESOURCE_ATTRIBUTES,
      podName: e.POD_NAME,
      podNamespace: e.POD_NAMESPACE,
      knativeService: e.K_SERVICE,
      knativeRevision: e.K_REVISION,
    },
  };
}

type ParsedEnv = v.InferOutput<typeof EnvSchema>;

function dbConfig(e: ParsedEnv, env: Config["env"]): DbConfig {
  let url = e.DATABASE_URL;
  if (!url && e.POSTGRES_HOST) {
    const user = encodeURIComponent(e.POSTGRES_USERNAME ?? "postgres");
    const password = e.POSTGRES_PASSWORD ? `:${encodeURIComponent(e.POSTGRES_PASSWORD)}` : "";
    const database = encodeURIComponent(e.POSTGRES_DATABASE ?? "payments");
    url = `postgres://${user}${password}@${e.POSTGRES_HOST}:${e.POSTGRES_PORT ?? 5432}/${database}`;
  }
  const isPostgresUrl = url?.startsWith("postgres");
  const driver: DbDriver =
    e.DB_DRIVER ?? (!isPostgresUrl ? "pglite" : /\.neon\.(tech|build)\b/.test(url ?? "") ? "neon" : "pg");
  if (driver !== "pglite" && !isPostgresUrl) {
    throw new ConfigError(`Invalid configuration: DB_DRIVER=${driver} needs DATABASE_URL or POSTGRES_HOST`);
  }
  if (driver === "pglite" && env === "production") {
    throw new ConfigError(
      "Invalid configuration: DB_DRIVER=pglite is for development; set DATABASE_URL or POSTGRES_HOST",
    );
  }
  const dataDir =
    driver !== "pglite"
      ? undefined
      : url === "memory://"
        ? undefined
        : url?.startsWith("file:")
          ? url.slice("file:".length)
          : (e.DATA_DIR ?? (env === "test" ? undefined : "./.data"));
  return {
    driver,
    url: isPostgresUrl ? url : undefined,
    dataDir,
    // Small on purpose: Knative runs many small instances (six services × up to 20 each), and their pools add
    // up at the server (6 × 20 × 5 = 600 at full scale, so put PgBouncer or Neon's pooler in front). A request
    // holds a connection only for its few statements, never across a provider call, so 5 keep one core busy.
    poolMax: e.DB_POOL_MAX ?? 5,
    connectTimeoutMs: e.DB_CONNECT_TIMEOUT_MS ?? 3_000,
    statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS ?? 5_000,
    preparedStatements: e.DB_PREPARED_STATEMENTS !== "false" && e.DB_PREPARED_STATEMENTS !== "0",
    ssl: isPostgresUrl ? dbTls(e, url as string) : false,
    neonWsProxy: e.NEON_WS_PROXY,
    schema: e.DB_SCHEMA,
  };
}

/**
 * POSTGRES_SSL wins over the URL's sslmode. Every mode that encrypts also verifies the server's certificate and
 * host name, as node-postgres itself does (a payment service must not send card tokens to an impostor), except
 * verify-ca (chain only) and the explicit opt-out no-verify; prefer and allow cannot fall back in node-postgres,
 * so prefer means TLS and allow means none.
 */
function dbTls(e: ParsedEnv, url: string): DbTls | false {
  // The query string alone: a password with unescaped reserved characters would make the whole URL unparseable.
  const params = new URLSearchParams(url.split("?")[1] ?? "");
  const setting = e.POSTGRES_SSL ?? params.get("sslmode") ?? "disable";
  const mode = setting === "true" || setting === "1" ? "verify-full" : setting;
  if (mode === "disable" || mode === "false" || mode === "0" || mode === "allow") return false;
  return {
    verifyChain: mode !== "no-verify",
    verifyHost: mode !== "no-verify" && mode !== "verify-ca",
    ca: e.POSTGRES_SSL_CA ?? params.get("sslrootcert") ?? undefined,
    cert: params.get("sslcert") ?? undefined,
    key: params.get("sslkey") ?? undefined,
  };
}

function redisUrl(e: ParsedEnv): string | undefined {
  if (e.REDIS_URL) return e.REDIS_URL;
  if (!e.REDIS_HOST) return undefined;
  const password = e.REDIS_PASSWORD ? `:${encodeURIComponent(e.REDIS_PASSWORD)}@` : "";
  return `redis://${password}${e.REDIS_HOST}:${e.REDIS_PORT ?? 6379}`;
}
