import { type FixedResult, type FixedRounds, medianBy } from "./fixed-load.ts";
import type { Sessions } from "./load.ts";
import type { PgbenchResult } from "./pgbench.ts";
import type { Machine, Usage } from "./proc.ts";
import { type ProfileSummary, profileMarkdown } from "./profile.ts";
import type { LatencyStats, RunSummary } from "./recorder.ts";

export interface Ratio {
  ours: number;
  ceiling: number;
  /** ours / ceiling */
  ratio: number;
  /**
   * The same comparison by the server's CPU per request (ceiling's / ours): what the throughput ratio would be
   * if both were CPU-bound on a core of their own, which holds when other work on the machine takes cores away.
   */
  by_cpu?: number | null;
  /** With interleaved rounds: each round's ratio, of which `ratio` is the median. */
  per_round?: number[];
}

export interface Target {
  source: "seed" | "project";
  name: string;
  required: string;
  actual: string;
  pass: boolean;
}

export interface ConfirmLoop {
  users: number;
  confirms_per_second: number;
  confirm: LatencyStats | null;
  errors: number;
  error_kinds: Record<string, number>;
  usage: Usage | null;
}

export interface ConfirmOnly extends ConfirmLoop {
  /** Every prepared payment was confirmed before the window ended: the rate is a floor. */
  ran_out: boolean;
}

export interface BenchResults {
  started_at: string;
  finished_at: string;
  mode: "smoke" | "full";
  command: string;
  machine: Machine & { loadavg_at_start: number[] };
  setup: {
    service: string;
    database: string;
    cache: string;
    node_env: string;
    log_level: string;
    rate_limit: string;
    db_pool_max: number;
    merchants: number;
    provider_latency_ms: number;
    /** Service settings changed with --set. */
    overrides: Record<string, string>;
    load_generator: string;
    cores: string;
  };
  mix: (RunSummary & { users: number; warmup_seconds: number; usage: Usage | null }) | null;
  /** Events the services sent to the bench's sink over the run, and those left unsent in the outbox at the end. */
  events?: { received: number; unsent: number | null } | null;
  /** The paced (open-model) mix; absent from results written before it existed. */
  paced?:
    | (RunSummary & { rate: number; connections: number; sessions: Sessions; usage: Usage | null })
    | null;
  references: {
    http: {
      bare_node_http: FixedRounds;
      health: FixedRounds;
      get_payment_cache_hit: FixedRounds & { cache_hit_ratio: number | null };
      health_vs_bare: Ratio;
      get_payment_vs_bare: Ratio;
    } | null;
    confirm: {
      /** The create → confirm loop, beside pgbench's flow script. */
      service: ConfirmLoop;
      /** Confirms of payments created beforehand, beside pgbench's confirm script (PostgreSQL runs only). */
      confirm_only: ConfirmOnly | null;
      pgbench_confirm: PgbenchResult | null;
      pgbench_flow: PgbenchResult | null;
      confirm_vs_pgbench: Ratio | null;
      flow_vs_pgbench: Ratio | null;
    } | null;
    runtimes: {
      fast_node_server: FixedResult;
      functions_framework: FixedResult;
      functions_framework_vs_fast: Ratio;
    } | null;
  };
  targets: Target[];
  unexpected_errors: number;
  skipped: string[];
  /** Warnings and errors the service children logged, by child and message. */
  server_problems: Record<string, Record<string, number>>;
  /** With --profile: the service under the mix, and the status function serving cache-hit reads alone. */
  profiles: { mix?: ProfileSummary; get_payment?: ProfileSummary };
  ok: boolean;
}

export function ratio(ours: number, ceiling: number): Ratio {
  return { ours, ceiling, ratio: ceiling > 0 ? Math.round((ours / ceiling) * 1000) / 1000 : 0 };
}

export function fixedRatio(ours: FixedResult, ceiling: FixedResult): Ratio {
  const a = ours.server_cpu_us_per_request;
  const b = ceiling.server_cpu_us_per_request;
  return {
    ...ratio(ours.requests_per_second, ceiling.requests_per_second),
    by_cpu: a && b ? Math.round((b / a) * 1000) / 1000 : null,
  };
}

/**
 * The ratio of runs taken in interleaved rounds (round i of ours beside round i of the ceiling): the round whose
 * ratio is the median (the lower middle one for an even count), its own requests/s and CPU ratio with it, and
 * every round's ratio. A slow minute of this machine moves that far less than one run of each would.
 */
export function roundsRatio(ours: FixedResult[], ceiling: FixedResult[]): Ratio {
  const rounds = ours.map((round, i) => fixedRatio(round, ceiling[i] as FixedResult));
  return { ...medianBy(rounds, (r) => r.ratio), per_round: rounds.map((r) => r.ratio) };
}

const pct = (r: Ratio | null | undefined) => (r ? `${(r.ratio * 100).toFixed(1)} %` : "–");
/** A median ratio with the rounds it is the median of. */
const pctRounds = (r: Ratio) =>
  r.per_round && r.per_round.length > 1
    ? `${pct(r)} (rounds: ${r.per_round.map((v) => (v * 100).toFixed(1)).join(", ")})`
    : pct(r);
const ms = (v: number | null | undefined) => (v === null || v === undefined ? "–" : `${v}`);
const num = (v: number | null | undefined) =>
  v === null || v === undefined ? "–" : v.toLocaleString("en-US");

/** CPU milliseconds per unit of work (request, flow) of the service and of PostgreSQL over a window. */
function costLine(u: Usage | null | undefined, perSecond: number, unit: string): string {
  if (!u || perSecond <= 0) return "";
  const each = (cores: number | null) => (cores === null ? "–" : ((cores * 1000) / perSecond).toFixed(2));
  return `CPU per ${unit}: service ${each(u.server_cores)} ms, PostgreSQL ${each(u.postgres_cores)} ms.`;
}

function usageLine(u: Usage | null | undefined): string {
  if (!u) return "";
  return (
    `server ${u.server_cores ?? "–"} cores (RSS max ${u.server_rss_mib_max ?? "–"} MiB), ` +
    `load generator ${u.loadgen_cores}, PostgreSQL ${u.postgres_cores}, Redis ${u.redis_cores}, ` +
    `other processes ${u.other_cores}; machine busy ${u.machine_busy_cores} cores`
  );
}

function statsRow(label: string, s: LatencyStats): string {
  return `| ${label} | ${num(s.requests_per_second)} | ${ms(s.p50_ms)} | ${ms(s.p95_ms)} | ${ms(s.p99_ms)} | ${ms(s.max_ms)} | ${s.errors} | ${(s.error_rate * 100).toFixed(2)} % |`;
}

function fixedRow(label: string, r: FixedResult): string {
  return `| ${label} | ${r.connections} | ${num(r.requests_per_second)} | ${ms(r.p50_ms)} | ${ms(r.p95_ms)} | ${ms(r.p99_ms)} | ${r.errors} | ${r.usage.server_cores ?? "–"} | ${ms(r.server_cpu_us_per_request)} | ${r.usage.loadgen_cores} | ${r.usage.other_cores} |`;
}

const byCpu = (r: Ratio | null | undefined) =>
  r?.by_cpu === null || r?.by_cpu === undefined ? "–" : `${(r.by_cpu * 100).toFixed(1)} %`;

/** The largest share of cores other processes took during any measured window. */
function contention(r: BenchResults): number {
  const usages: (Usage | null | undefined)[] = [
    r.mix?.usage,
    r.paced?.usage,
    r.references.http?.bare_node_http.usage,
    r.references.http?.health.usage,
    r.references.http?.get_payment_cache_hit.usage,
    r.references.confirm?.service.usage,
    r.references.confirm?.confirm_only?.usage,
    r.references.confirm?.pgbench_confirm?.usage,
    r.references.confirm?.pgbench_flow?.usage,
    r.references.runtimes?.fast_node_server.usage,
    r.references.runtimes?.functions_framework.usage,
  ];
  const rounds = [
    r.references.http?.bare_node_http,
    r.references.http?.health,
    r.references.http?.get_payment_cache_hit,
  ];
  return Math.max(
    0,
    ...usages.map((u) => u?.other_cores ?? 0),
    ...rounds.map((run) => run?.rounds_max_other_cores ?? 0),
  );
}

function mixTables(mix: RunSummary & { usage: Usage | null }, journeyNote = ""): string[] {
  const out = [
    "| | req/s | p50 | p95 | p99 | max | errors | error rate |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    statsRow("**all requests**", mix.total),
    ...Object.entries(mix.scenarios).map(([name, s]) => statsRow(`scenario ${name}`, s)),
    ...Object.entries(mix.steps).map(([name, s]) => statsRow(`step ${name}`, s)),
    "",
    `| journey | completed/s | p50 ms${journeyNote} | p95 ms${journeyNote} |`,
    "| --- | ---: | ---: | ---: |",
    ...Object.entries(mix.journeys).map(
      ([name, j]) => `| ${name} | ${num(j.journeys_per_second)} | ${ms(j.p50_ms)} | ${ms(j.p95_ms)} |`,
    ),
    "",
    `CPU over the window: ${usageLine(mix.usage)}. ${costLine(mix.usage, mix.total.requests_per_second, "request")}`,
    "",
  ];
  if (Object.keys(mix.error_kinds).length > 0) {
    out.push("Errors by kind:", "", ...Object.entries(mix.error_kinds).map(([k, n]) => `- ${k}: ${n}`), "");
  }
  return out;
}

function loopLine(label: string, loop: ConfirmLoop, unit: string): string {
  const kinds = Object.entries(loop.error_kinds)
    .map(([k, n]) => `${k}: ${n}`)
    .join("; ");
  return (
    `${label}: ${num(loop.confirms_per_second)} confirms/s, confirm p50 ${ms(loop.confirm?.p50_ms)} ms, ` +
    `p95 ${ms(loop.confirm?.p95_ms)} ms, p99 ${ms(loop.confirm?.p99_ms)} ms, ${loop.errors} errors` +
    `${loop.errors > 0 ? ` (${kinds})` : ""}; ${usageLine(loop.usage)}. ${costLine(loop.usage, loop.confirms_per_second, unit)}`
  );
}

export function markdown(r: BenchResults): string {
  const m = r.machine;
  const out: string[] = [
    `# Benchmark (${r.mode}) ${r.started_at}`,
    "",
    `\`${r.command}\``,
    "",
    `Machine: ${m.nproc} × ${m.cpu_model}, ${m.memory_gib} GiB, Node ${m.node}, Linux ${m.kernel}` +
      `${m.postgres ? `, PostgreSQL ${m.postgres}` : ""}; load average at start ${m.loadavg_at_start.join(" ")}.`,
    "",
    `Service: ${r.setup.service}; ${r.setup.database}; cache: ${r.setup.cache}; NODE_ENV=${r.setup.node_env}, ` +
      `LOG_LEVEL=${r.setup.log_level} (request logs off), rate limit ${r.setup.rate_limit} (not a rate-limit test), ` +
      `DB_POOL_MAX=${r.setup.db_pool_max}, ${r.setup.merchants} merchants, sandbox provider latency ` +
      `${r.setup.provider_latency_ms} ms` +
      `${
        Object.keys(r.setup.overrides).length > 0
          ? `; set: ${Object.entries(r.setup.overrides)
              .map(([k, v]) => `${k}=${v}`)
              .join(", ")}`
          : ""
      }.`,
    "",
    `Events: the services of the two mixes send their outbox to the bench's sink (K_SINK, bench/event-sink.ts, ` +
      `answering 202 as a Broker's ingress does); the references' service writes its events and sends none, as ` +
      `pgbench's scripts do${
        r.events
          ? `; ${num(r.events.received)} events received over the run, ${r.events.unsent ?? "–"} left unsent at the end`
          : ""
      }.`,
    "",
    `Load: ${r.setup.load_generator}. Cores: ${r.setup.cores}`,
    "",
  ];
  const busy = contention(r);
  if (busy >= 0.25) {
    out.push(
      `> **The machine was shared**: other processes took up to ${busy} of its ${m.nproc} cores during a measured ` +
        "window, so throughput and latency here are lower than the service alone would get. The CPU-per-request " +
        "columns and the by-CPU ratios do not depend on that; compare by them.",
      "",
    );
  }

  if (r.mix) {
    const mix = r.mix;
    out.push(
      `## The seed's mix, at full speed: ${mix.users} concurrent users, ${mix.seconds} s measured after ${mix.warmup_seconds} s warm-up`,
      "",
      "70 % payment flow (create order → create payment → confirm), 15 % status checks (2–3 keyset pages of " +
        "20 orders, then one order), 10 % cancellations (create order → create payment → cancel; 30 % also " +
        "cancel the order), 5 % health. Each user starts its next request as soon as the last one is answered " +
        "(a closed loop, no think time): this is the service's capacity, and at capacity latency is the users' " +
        "queue (users ÷ throughput). Latencies in ms, of successful requests; errors are any unexpected status, " +
        "body or network failure.",
      "",
      ...mixTables(mix),
    );
  }

  if (r.paced) {
    const paced = r.paced;
    out.push(
      `## The seed's mix as users offer it: ${num(paced.rate)} journeys/s, ${num(paced.sessions.mean)} sessions open (max ${num(paced.sessions.max)}), ${paced.seconds} s measured`,
      "",
      "The same journeys, arriving at a fixed rate whatever the service's pace (k6's constant-arrival-rate) and " +
        "pausing between steps for k6's think times (k6/think-times.ts), as k6/mix.ts offers them to a " +
        `deployment; sessions share ${paced.connections} connections. Below capacity, these are the latencies ` +
        "users see at this load. A request counts when it started inside the window, however late it ended.",
      "",
      ...mixTables(paced, " (think time included)"),
    );
  }

  const refs = r.references;
  const rows: string[] = [];
  if (refs.http) {
    rows.push(
      `| GET /health vs bare node:http | ${num(refs.http.health_vs_bare.ours)} | ${num(refs.http.health_vs_bare.ceiling)} | ${pctRounds(refs.http.health_vs_bare)} | ${byCpu(refs.http.health_vs_bare)} | |`,
      `| GET /v1/payments/{id}, cache hit${refs.http.get_payment_cache_hit.cache_hit_ratio === null ? "" : ` (${(refs.http.get_payment_cache_hit.cache_hit_ratio * 100).toFixed(1)} % hits)`}, vs bare node:http | ${num(refs.http.get_payment_vs_bare.ours)} | ${num(refs.http.get_payment_vs_bare.ceiling)} | ${pctRounds(refs.http.get_payment_vs_bare)} | ${byCpu(refs.http.get_payment_vs_bare)} | ≥ 40 % |`,
    );
  }
  if (refs.confirm) {
    const c = refs.confirm;
    rows.push(
      `| confirms/s of payments created beforehand (${c.service.users} users) vs pgbench confirm script (${c.pgbench_confirm?.clients ?? "–"} clients) | ${num(c.confirm_only?.confirms_per_second)} | ${num(c.confirm_vs_pgbench?.ceiling)} | ${pct(c.confirm_vs_pgbench)} | | ≥ 30 % |`,
      `| create → confirm flows/s vs pgbench flow script (same round trips) | ${num(c.service.confirms_per_second)} | ${num(c.flow_vs_pgbench?.ceiling)} | ${pct(c.flow_vs_pgbench)} | | |`,
    );
  }
  if (refs.runtimes) {
    const f = refs.runtimes.functions_framework_vs_fast;
    rows.push(
      `| functions-framework vs @hono/node-server (FUNCTION_TARGET=status), GET /v1/payments/{id} | ${num(f.ours)} | ${num(f.ceiling)} | ${pct(f)} | ${byCpu(f)} | |`,
    );
  }
  if (rows.length > 0) {
    out.push(
      "## References, side by side on this machine",
      "",
      "| measurement | ours (per s) | ceiling (per s) | ours / ceiling | by CPU per request | project target |",
      "| --- | ---: | ---: | ---: | ---: | --- |",
      ...rows,
      "",
      "| run | connections | req/s | p50 ms | p95 ms | p99 ms | errors | server cores | server CPU µs/req | load-gen cores | other cores |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    if (refs.http) {
      out.push(
        fixedRow("bare node:http, constant JSON", refs.http.bare_node_http),
        fixedRow("our GET /health", refs.http.health),
        fixedRow("our GET /v1/payments/{id} (cache hit)", refs.http.get_payment_cache_hit),
      );
    }
    if (refs.runtimes) {
      out.push(
        fixedRow("status on @hono/node-server", refs.runtimes.fast_node_server),
        fixedRow("status on functions-framework", refs.runtimes.functions_framework),
      );
    }
    out.push("");
    if (refs.confirm) {
      const c = refs.confirm;
      out.push(loopLine("Create → confirm loop", c.service, "flow"), "");
      if (c.confirm_only) {
        const note = c.confirm_only.ran_out ? " (ran out of prepared payments: a floor)" : "";
        out.push(
          loopLine(`Confirm loop on payments created beforehand${note}`, c.confirm_only, "confirm"),
          "",
        );
      }
      for (const [label, p] of [
        ["pgbench confirm script", c.pgbench_confirm],
        ["pgbench flow script", c.pgbench_flow],
      ] as const) {
        if (p) {
          out.push(
            `${label} (-M ${p.mode}): ${num(p.transactions_per_second)} scripts/s, average ${ms(p.latency_avg_ms)} ms, ` +
              `${p.failed} failed; ${usageLine(p.usage)}. ${costLine(p.usage, p.transactions_per_second, "script")}`,
            "",
          );
        }
      }
    }
  }

  if (r.targets.length > 0) {
    out.push(
      "## Targets",
      "",
      "| source | target | required | this run | |",
      "| --- | --- | --- | --- | --- |",
      ...r.targets.map(
        (t) => `| ${t.source} | ${t.name} | ${t.required} | ${t.actual} | ${t.pass ? "met" : "**missed**"} |`,
      ),
      "",
    );
  }
  if (r.skipped.length > 0) out.push(`Skipped: ${r.skipped.join("; ")}.`, "");
  out.push(`Unexpected errors: ${r.unexpected_errors}.`, "");
  const problems = Object.entries(r.server_problems);
  if (problems.length > 0) {
    out.push("Warnings and errors the service logged:", "");
    for (const [child, counts] of problems) {
      for (const [message, n] of Object.entries(counts)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)) {
        out.push(`- ${child}: ${message} (${n}×)`);
      }
    }
    out.push("");
  }
  if (r.profiles.mix)
    out.push("## CPU profile of the service under the mix", "", profileMarkdown(r.profiles.mix));
  if (r.profiles.get_payment) {
    out.push(
      "## CPU profile of GET /v1/payments/{id} (cache hit), status function alone",
      "",
      profileMarkdown(r.profiles.get_payment),
    );
  }
  return out.join("\n");
}
