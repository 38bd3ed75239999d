/**
 * The process as Knative runs it (lib/runtime/main.ts on PostgreSQL and Redis) pushing OTLP to a stand-in
 * collector: traces of a request with its SQL, Redis and provider spans, and, on SIGTERM, the last metrics push
 * that keeps a scaled-down pod's counts. And with no OTEL_* variables, nothing is sent at all.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { mintToken } from "../../lib/runtime/dev-token.ts";
import {
  postgresSkipReason,
  redisSkipReason,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
} from "../support/backends.ts";
import { TEST_SECRET } from "../support/harness.ts";
import { freePort } from "../support/ports.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const skipReason = (await postgresSkipReason()) ?? (await redisSkipReason());
beforeEach((context) => {
  if (skipReason) context.skip(skipReason);
});

const CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c";
const SCHEMA = `otel_${randomBytes(4).toString("hex")}`;

interface Received {
  path: string;
  body: OtlpBody;
}
type Attr = { key: string; value: Record<string, unknown> };
interface OtlpBody {
  resourceSpans?: { resource: { attributes: Attr[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
  resourceMetrics?: { resource: { attributes: Attr[] }; scopeMetrics: { metrics: OtlpMetric[] }[] }[];
}
interface OtlpSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Attr[];
}
interface OtlpMetric {
  name: string;
  sum?: { isMonotonic: boolean; dataPoints: { attributes: Attr[]; asDouble: number }[] };
  histogram?: { dataPoints: { attributes: Attr[]; count: string | number }[] };
}

let collector: Server;
let received: Received[] = [];
let admin: pg.Client;

beforeAll(async () => {
  if (skipReason) return;
  collector = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      received.push({ path: req.url ?? "", body: JSON.parse(body) as OtlpBody });
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    });
  });
  collector.listen(0, "127.0.0.1");
  await once(collector, "listening");
  admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${SCHEMA}`);
});
afterAll(async () => {
  if (skipReason) return;
  await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await admin.end();
  collector.close();
});

const attrs = (list: Attr[]) => Object.fromEntries(list.map((a) => [a.key, Object.values(a.value)[0]]));

interface Running {
  child: ChildProcess;
  base: string;
  exit: Promise<number | null>;
}

async function startService(env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", "lib/runtime/main.ts"], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: "development",
      LOG_LEVEL: "warn",
      PORT: String(port),
      JWT_SECRET: TEST_SECRET,
      DATABASE_URL: TEST_DATABASE_URL,
      DB_SCHEMA: SCHEMA,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `${SCHEMA}:`,
      ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exit = once(child, "exit").then(([code]) => code as number | null);
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = await fetch(`${base}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error("the service did not become ready");
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, base, exit };
}

async function payment(base: string, traceparent?: string) {
  const token = await mintToken(new TextEncoder().encode(TEST_SECRET), "acct_otel");
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
    return (await res.json()) as { id: string; status: string };
  };
  const order = await post("/v1/orders", { amount: 2500, currency: "USD" });
  const created = await post("/v1/payments", { order_id: order.id, payment_method: "pm_card_visa" });
  const confirmed = await post(`/v1/payments/${created.id}/confirm`, {}, traceparent ? { traceparent } : {});
  expect(confirmed.status).toBe("succeeded");
}

describe("with OTEL_EXPORTER_OTLP_ENDPOINT set", () => {
  it("exports the request's trace and, on SIGTERM, a final metrics push", { timeout: 90_000 }, async () => {
    received = [];
    const { port } = collector.address() as AddressInfo;
    const service = await startService({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_SERVICE_NAME: "payment-service",
      // Longer than the test: the only push is the one on shutdown.
      OTEL_METRIC_EXPORT_INTERVAL: "600000",
      OTEL_RESOURCE_ATTRIBUTES: "k8s.namespace.name=payment-service",
      K_SERVICE: "confirm",
      K_REVISION: "confirm-00001",
    });
    await payment(service.base, `00-${CALLER_TRACE}-b7ad6b7169203331-01`);
    expect(received.filter((r) => r.path === "/v1/metrics")).toEqual([]);

    service.child.kill("SIGTERM");
    expect(await service.exit).toBe(0);

    // Metrics: the prom-client series, under their own names, from this pod.
    const pushes = received.filter((r) => r.path === "/v1/metrics");
    expect(pushes.length).toBeGreaterThanOrEqual(1);
    const resourceMetrics = pushes.flatMap((p) => p.body.resourceMetrics ?? []);
    const resource = attrs(resourceMetrics[0]?.resource.attributes ?? []);
    expect(resource).toMatchObject({
      "service.name": "payment-service",
      "k8s.namespace.name": "payment-service",
      "faas.name": "confirm",
      "faas.version": "confirm-00001",
    });
    expect(resource["service.instance.id"]).toBe(resource["k8s.pod.name"]);
    const metrics = resourceMetrics.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics));
    const paymentsTotal = metrics.find((m) => m.name === "payments_total");
    expect(paymentsTotal?.sum?.isMonotonic).toBe(true);
    const point = (status: string) =>
      paymentsTotal?.sum?.dataPoints.find((p) => {
        const a = attrs(p.attributes);
        return a.provider === "sandbox" && a.currency === "USD" && a.status === status;
      })?.asDouble;
    expect({ succeeded: point("succeeded"), failed: point("failed") }).toEqual({ succeeded: 1, failed: 0 });
    const duration = metrics.find((m) => m.name === "payment_duration_seconds");
    expect(duration?.histogram?.dataPoints.map((p) => Number(p.count))).toEqual([1]);
    expect(metrics.map((m) => m.name)).toEqual(
      expect.arrayContaining(["http_requests_total", "process_resident_memory_bytes", "integration_up"]),
    );

    // Traces: the confirm continues the caller's trace; SQL, Redis and the provider call hang under it.
    const spans = received
      .filter((r) => r.path === "/v1/traces")
      .flatMap((r) => r.body.resourceSpans ?? [])
      .flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
    const inTrace = spans.filter((s) => s.traceId === CALLER_TRACE);
    const server = inTrace.find((s) => s.name === "POST /v1/payments/:id/confirm");
    expect(server?.parentSpanId).toBe("b7ad6b7169203331");
    const descendants = new Set([server?.spanId]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const s of inTrace) {
        if (s.parentSpanId && descendants.has(s.parentSpanId) && !descendants.has(s.spanId)) {
          descendants.add(s.spanId);
          grew = true;
        }
      }
    }
    const under = inTrace.filter((s) => descendants.has(s.spanId) && s !== server);
    const system = (s: OtlpSpan) => {
      const a = attrs(s.attributes);
      return a["db.system.name"] ?? a["db.system"];
    };
    expect(under.some((s) => s.name === "sandbox authorize")).toBe(true);
    expect(under.some((s) => system(s) === "postgresql" && s.name.startsWith("pg.query"))).toBe(true);
    expect(under.some((s) => system(s) === "redis")).toBe(true);
    // Statements without their parameters; Redis commands without keys or values.
    for (const s of under) {
      const text = String(attrs(s.attributes)["db.query.text"] ?? attrs(s.attributes)["db.statement"] ?? "");
      expect(text).not.toMatch(/acct_otel|pay_[0-9a-f]{8}/);
    }
    // Probes are not traced.
    expect(spans.filter((s) => s.name.includes("/ready"))).toEqual([]);
  });
});

describe("without OTEL_* variables", () => {
  it("sends nothing, and /metrics still serves the same series", { timeout: 60_000 }, async () => {
    received = [];
    const service = await startService({});
    await payment(service.base);
    const text = await (await fetch(`${service.base}/metrics`)).text();
    expect(text).toMatch(/^payments_total\{provider="sandbox",status="succeeded",currency="USD"\} 1$/m);
    service.child.kill("SIGTERM");
    expect(await service.exit).toBe(0);
    expect(received).toEqual([]);
  });
});
