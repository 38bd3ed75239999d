import autocannon from "autocannon";
import { round, startUsage, type Usage } from "./proc.ts";
import { percentile } from "./recorder.ts";

export interface FixedRequest {
  path: string;
  headers?: Record<string, string>;
}

export interface FixedResult {
  connections: number;
  requests_per_second: number;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  errors: number;
  /**
   * The server's CPU per answer: unlike requests/s, it holds on a machine whose cores are busy with other work, so
   * ceilings can be compared by it too.
   */
  server_cpu_us_per_request: number | null;
  /** Answers by status code, so a run full of 401s or 404s says so. */
  statuses: Record<string, number>;
  usage: Usage;
}

/**
 * The same GET over and over from `connections` keep-alive connections, with autocannon: its own HTTP parser on raw
 * sockets costs a fraction of node:http's client, so a ceiling measured with it is the server's and not the load
 * generator's. Connection i sends requests[i % n] (a payment and its merchant's token, say) for the whole run.
 * A warm-up run comes first and is thrown away.
 */
export async function fixedLoad(
  port: number,
  requests: FixedRequest[],
  options: { connections: number; warmupSeconds: number; durationSeconds: number; serverPid?: number },
): Promise<FixedResult> {
  const run = async (seconds: number, measure: boolean) => {
    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    let bad = 0;
    let next = 0;
    const result = await autocannon({
      url: `http://127.0.0.1:${port}`,
      connections: options.connections,
      duration: seconds,
      setupClient(client) {
        const request = requests[next++ % requests.length] as FixedRequest;
        // setRequests, not setRequest: the latter only changes the request in flight, the next ones revert.
        client.setRequests([{ method: "GET", path: request.path, headers: request.headers }]);
        if (!measure) return;
        client.on("response", (status: number, _bytes: number, ms: number) => {
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status >= 200 && status < 300) latencies.push(ms);
          else bad++;
        });
      },
    });
    return { result, latencies, bad, statuses };
  };

  if (options.warmupSeconds > 0) await run(options.warmupSeconds, false);
  const usage = startUsage(options.serverPid);
  const { result, latencies, bad, statuses } = await run(options.durationSeconds, true);
  const used = usage.stop();
  const sorted = Float64Array.from(latencies).sort();
  const rps = (latencies.length + bad) / result.duration;
  return {
    connections: options.connections,
    requests_per_second: round(rps, 0),
    server_cpu_us_per_request:
      used.server_cores === null || rps === 0 ? null : round((used.server_cores * 1e6) / rps, 1),
    p50_ms: percentile(sorted, 0.5),
    p95_ms: percentile(sorted, 0.95),
    p99_ms: percentile(sorted, 0.99),
    errors: bad + result.errors + result.timeouts,
    statuses,
    usage: used,
  };
}

/** The middle element of a non-empty list sorted by `key`; the lower of the two middle ones for an even count. */
export function medianBy<T>(items: T[], key: (item: T) => number): T {
  if (items.length === 0) throw new Error("medianBy: no items");
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)] as T;
}

/**
 * Interleaved rounds of one load as one result: the figures of its median round by requests/s (the requests/s of
 * every round are kept), with the errors and answers of all rounds, and the most cores other processes took in
 * any round.
 */
export interface FixedRounds extends FixedResult {
  rounds_requests_per_second: number[];
  rounds_max_other_cores: number;
}

export function mergeRounds(rounds: FixedResult[]): FixedRounds {
  const median = medianBy(rounds, (round) => round.requests_per_second);
  const statuses: Record<string, number> = {};
  for (const round of rounds)
    for (const [status, n] of Object.entries(round.statuses)) statuses[status] = (statuses[status] ?? 0) + n;
  return {
    ...median,
    errors: rounds.reduce((sum, round) => sum + round.errors, 0),
    statuses,
    rounds_requests_per_second: rounds.map((round) => round.requests_per_second),
    rounds_max_other_cores: Math.max(...rounds.map((round) => round.usage.other_cores ?? 0)),
  };
}
