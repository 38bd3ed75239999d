import type { BenchOptions } from "./options.ts";
import type { BenchResults, Target } from "./report.ts";

/**
 * The seed's load-test targets and the project's own for this 2-core machine, checked against one run. They are
 * reported, never asserted: a bench run is a measurement, and a busy machine is not a failing service.
 */
export function evaluateTargets(r: BenchResults, options: BenchOptions): Target[] {
  const targets: Target[] = [];
  const add = (source: Target["source"], name: string, required: string, actual: string, pass: boolean) =>
    targets.push({ source, name, required, actual, pass });
  // The seed's targets are for its k6 test, users pausing between steps: the paced mix is that load.
  const paced = r.paced;
  if (paced) {
    const { total, sessions } = paced;
    const rps = total.requests_per_second;
    const p95 = total.p95_ms ?? Number.POSITIVE_INFINITY;
    add(
      "seed",
      "paced mix: concurrent users (sessions open)",
      "≥ 1000",
      String(sessions.mean),
      sessions.mean >= 1000,
    );
    add("seed", "paced mix p95", "< 2000 ms", `${total.p95_ms} ms`, p95 < 2000);
    add(
      "seed",
      "paced mix error rate",
      "< 1 %",
      `${(total.error_rate * 100).toFixed(2)} %`,
      total.error_rate < 0.01,
    );
    add("seed", "paced mix throughput", "≥ 500 req/s", `${rps} req/s`, rps >= 500);
  }
  const mix = r.mix?.total;
  if (mix) {
    const rps = mix.requests_per_second;
    const p95 = mix.p95_ms ?? Number.POSITIVE_INFINITY;
    const p99 = mix.p99_ms ?? Number.POSITIVE_INFINITY;
    if (!paced) {
      add("seed", "concurrent users", "≥ 1000", String(options.connections), options.connections >= 1000);
      add("seed", "mix p95", "< 2000 ms", `${mix.p95_ms} ms`, p95 < 2000);
      add("seed", "mix error rate", "< 1 %", `${(mix.error_rate * 100).toFixed(2)} %`, mix.error_rate < 0.01);
      add("seed", "mix throughput", "≥ 500 req/s", `${rps} req/s`, rps >= 500);
    }
    add("project", "mix throughput at 1000 connections", "≥ 1500 req/s", `${rps} req/s`, rps >= 1500);
    add("project", "mix p95", "< 250 ms", `${mix.p95_ms} ms`, p95 < 250);
    add("project", "mix p99", "< 500 ms", `${mix.p99_ms} ms`, p99 < 500);
    add("project", "mix unexpected errors", "0", String(mix.errors), mix.errors === 0);
  }
  const http = r.references.http;
  if (http) {
    const { ratio } = http.get_payment_vs_bare;
    add(
      "project",
      "GET /v1/payments/{id} (cache hit) vs bare node:http",
      "≥ 40 %",
      `${(ratio * 100).toFixed(1)} %`,
      ratio >= 0.4,
    );
  }
  const confirm = r.references.confirm?.confirm_vs_pgbench;
  if (confirm) {
    add(
      "project",
      "confirm throughput vs pgbench ceiling",
      "≥ 30 %",
      `${(confirm.ratio * 100).toFixed(1)} %`,
      confirm.ratio >= 0.3,
    );
  }
  return targets;
}
