import { parseArgs } from "node:util";

export const PHASES = ["mix", "paced", "http", "confirm", "runtimes", "pgbench"] as const;
export type Phase = (typeof PHASES)[number];

export interface BenchOptions {
  smoke: boolean;
  /** PGlite + memory cache in the service instead of the machine's PostgreSQL and Redis. */
  embedded: boolean;
  /** dist: the esbuild bundle (`npm run build`, what the image runs); src: the TypeScript sources through tsx. */
  runtime: "dist" | "src";
  build: boolean;
  /** Concurrent virtual users (one keep-alive connection each) of the mix. */
  connections: number;
  /** Measured seconds of the mix, after the warm-up. */
  duration: number;
  /** Journeys started per second by the paced mix (users pausing between steps, k6's think times). */
  rate: number;
  warmup: number;
  /** Connections and seconds of the reference runs (ceilings, confirm loop, runtimes). */
  refConnections: number;
  refDuration: number;
  /** Interleaved rounds the HTTP references (bare node:http, /health, the cache hit) split refDuration into. */
  refRounds: number;
  refWarmup: number;
  /** The service's PostgreSQL pool; pgbench gets as many clients. */
  pool: number;
  merchants: number;
  /** Payments read over and over by the cache-hit references. */
  readPayments: number;
  providerLatencyMs: number;
  /** Write a V8 CPU profile of the service under the mix (node --cpu-prof). */
  profile: boolean;
  phases: Phase[];
  pgUrl: string;
  redisUrl: string;
  out: string;
  /** Extra service settings (--set NAME=VALUE), for experiments such as PROVIDER_CONCURRENCY or DB_POOL_MAX. */
  serviceEnv: Record<string, string>;
}

const USAGE = `npm run bench -- [options]

  --smoke               a few seconds, low concurrency; exits 0 when nothing unexpected failed
  --embedded            the service on PGlite + memory cache instead of PostgreSQL + Redis
  --connections N       concurrent users of the mix (default 1000; smoke 10)
  --duration S          measured seconds of the mix (default 20; smoke 2)
  --warmup S            warm-up seconds before measuring, excluded (default 5; smoke 1)
  --rate N              journeys started per second by the paced mix, which pauses between steps for k6's think
                        times (default 200, k6/mix.ts's default load: about 600 req/s, 1000 sessions; smoke 5)
  --ref-connections N   connections of the reference runs (default 100; smoke 10)
  --ref-duration S      measured seconds of each reference run, of all rounds together for the HTTP ones
                        (default 8; smoke 1)
  --ref-rounds N        interleaved rounds of bare node:http, /health and the cache hit, splitting --ref-duration
                        (at least 1 s each); the ratio reported is the median round's (default 5; smoke 1)
  --pool N              the service's DB_POOL_MAX and pgbench's client count (default 10)
  --merchants N         merchants (tokens) the load is spread over (default 10)
  --provider-latency MS sandbox provider latency (default 0: measure the service, not a fake network)
  --profile             write a CPU profile of the service under the mix and summarize it
  --only a,b            phases: ${PHASES.join(", ")} (default all)
  --runtime dist|src    serve the bundle (default) or the sources through tsx (default for --smoke)
  --no-build            with --runtime dist: use the existing dist/ instead of running npm run build
  --pg URL              PostgreSQL server to create the scratch database on (default postgres://postgres@127.0.0.1:5432/postgres)
  --redis URL           Redis (default redis://127.0.0.1:6379)
  --out DIR             where latest.json and latest.md go (default bench/results)
  --set NAME=VALUE      an extra environment variable for every service child (repeatable), e.g.
                        --set PROVIDER_CONCURRENCY=1000; reported with the results
`;

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      smoke: { type: "boolean", default: false },
      embedded: { type: "boolean", default: false },
      connections: { type: "string" },
      duration: { type: "string" },
      rate: { type: "string" },
      warmup: { type: "string" },
      "ref-connections": { type: "string" },
      "ref-duration": { type: "string" },
      "ref-rounds": { type: "string" },
      pool: { type: "string" },
      merchants: { type: "string" },
      "provider-latency": { type: "string" },
      profile: { type: "boolean", default: false },
      only: { type: "string" },
      runtime: { type: "string" },
      "no-build": { type: "boolean", default: false },
      pg: { type: "string" },
      redis: { type: "string" },
      out: { type: "string" },
      set: { type: "string", multiple: true },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const smoke = values.smoke ?? false;
  const number = (name: string, raw: string | undefined, fallback: number, min = 0) => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`);
    return n;
  };
  const phases = values.only
    ? values.only.split(",").map((p) => {
        if (!(PHASES as readonly string[]).includes(p.trim())) throw new Error(`--only: unknown phase ${p}`);
        return p.trim() as Phase;
      })
    : [...PHASES];
  const runtime = values.runtime ?? (smoke ? "src" : "dist");
  if (runtime !== "dist" && runtime !== "src") throw new Error("--runtime must be dist or src");
  return {
    smoke,
    embedded: values.embedded ?? false,
    runtime,
    build: !values["no-build"],
    connections: Math.floor(number("connections", values.connections, smoke ? 10 : 1000, 1)),
    duration: number("duration", values.duration, smoke ? 2 : 20, 0.5),
    rate: number("rate", values.rate, smoke ? 5 : 200, 0.1),
    warmup: number("warmup", values.warmup, smoke ? 1 : 5),
    refConnections: Math.floor(number("ref-connections", values["ref-connections"], smoke ? 10 : 100, 1)),
    refDuration: number("ref-duration", values["ref-duration"], smoke ? 1 : 8, 0.5),
    refRounds: Math.floor(number("ref-rounds", values["ref-rounds"], smoke ? 1 : 5, 1)),
    refWarmup: smoke ? 0.5 : 2,
    pool: Math.floor(number("pool", values.pool, 10, 1)),
    merchants: Math.floor(number("merchants", values.merchants, smoke ? 3 : 10, 1)),
    readPayments: smoke ? 10 : 100,
    providerLatencyMs: Math.floor(number("provider-latency", values["provider-latency"], 0)),
    profile: values.profile ?? false,
    phases,
    pgUrl: values.pg ?? "postgres://postgres@127.0.0.1:5432/postgres",
    redisUrl: values.redis ?? "redis://127.0.0.1:6379",
    out: values.out ?? "bench/results",
    serviceEnv: Object.fromEntries(
      (values.set ?? []).map((pair) => {
        const at = pair.indexOf("=");
        if (at < 1) throw new Error(`--set ${pair}: expected NAME=VALUE`);
        return [pair.slice(0, at), pair.slice(at + 1)] as const;
      }),
    ),
  };
}
