import { round } from "./proc.ts";

export interface LatencyStats {
  requests: number;
  requests_per_second: number;
  errors: number;
  error_rate: number;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
}

export interface JourneyStats {
  journeys: number;
  journeys_per_second: number;
  p50_ms: number | null;
  p95_ms: number | null;
}

class Series {
  readonly latencies: number[] = [];
  errors = 0;

  stats(seconds: number): LatencyStats {
    const sorted = Float64Array.from(this.latencies).sort();
    const requests = sorted.length + this.errors;
    return {
      requests,
      requests_per_second: round(requests / seconds, 1),
      errors: this.errors,
      error_rate: requests === 0 ? 0 : round(this.errors / requests, 5),
      p50_ms: percentile(sorted, 0.5),
      p95_ms: percentile(sorted, 0.95),
      p99_ms: percentile(sorted, 0.99),
      max_ms: sorted.length === 0 ? null : round(sorted[sorted.length - 1] as number, 1),
    };
  }
}

/** Nearest-rank percentile of an ascending array; null when nothing was measured. */
export function percentile(sorted: ArrayLike<number>, q: number): number | null {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return round(sorted[index] as number, 1);
}

/**
 * Collects every request of a closed-loop run. Only what completes inside the measured window counts, so the
 * warm-up (connections opening, JIT, caches and pools filling) and the drain at the end stay out of the numbers.
 * Latency is kept for successful requests only; a failed one counts as an error whatever its latency.
 */
export class Recorder {
  private windowStart = Number.POSITIVE_INFINITY;
  private windowEnd = Number.POSITIVE_INFINITY;
  private readonly all = new Series();
  private readonly byStep = new Map<string, Series>();
  private readonly byScenario = new Map<string, Series>();
  private readonly journeys = new Map<string, number[]>();
  private readonly errorKinds = new Map<string, number>();

  open(at: number): void {
    this.windowStart = at;
  }

  close(at: number): void {
    this.windowEnd = at;
  }

  get seconds(): number {
    return (this.windowEnd - this.windowStart) / 1000;
  }

  /**
   * byStart: a request counts when it started inside the window, however late it ends (an open model, where the
   * slowest requests are the ones still running when the window closes); otherwise when it ended inside it.
   */
  constructor(private readonly byStart = false) {}

  private counts(at: number): boolean {
    return at >= this.windowStart && at <= this.windowEnd;
  }

  request(scenario: string, step: string, startedAt: number, endedAt: number, error?: string): void {
    if (!this.counts(this.byStart ? startedAt : endedAt)) return;
    const series = [this.all, seriesOf(this.byStep, step), seriesOf(this.byScenario, scenario)];
    for (const s of series) {
      if (error === undefined) s.latencies.push(endedAt - startedAt);
      else s.errors++;
    }
    if (error !== undefined) {
      const kind = `${step}: ${error}`;
      this.errorKinds.set(kind, (this.errorKinds.get(kind) ?? 0) + 1);
    }
  }

  /** A journey that ran to its end without an error (its requests are counted one by one as well). */
  journey(scenario: string, startedAt: number, endedAt: number): void {
    if (!this.counts(this.byStart ? startedAt : endedAt)) return;
    let list = this.journeys.get(scenario);
    if (!list) {
      list = [];
      this.journeys.set(scenario, list);
    }
    list.push(endedAt - startedAt);
  }

  summary() {
    const seconds = this.seconds;
    const map = (m: Map<string, Series>) =>
      Object.fromEntries([...m].map(([name, s]) => [name, s.stats(seconds)] as const));
    const journeys = Object.fromEntries(
      [...this.journeys].map(([name, list]) => {
        const sorted = Float64Array.from(list).sort();
        const stats: JourneyStats = {
          journeys: sorted.length,
          journeys_per_second: round(sorted.length / seconds, 1),
          p50_ms: percentile(sorted, 0.5),
          p95_ms: percentile(sorted, 0.95),
        };
        return [name, stats] as const;
      }),
    );
    return {
      seconds: round(seconds, 2),
      total: this.all.stats(seconds),
      scenarios: map(this.byScenario),
      steps: map(this.byStep),
      journeys,
      error_kinds: Object.fromEntries([...this.errorKinds].sort((a, b) => b[1] - a[1]).slice(0, 10)),
    };
  }
}

function seriesOf(map: Map<string, Series>, name: string): Series {
  let s = map.get(name);
  if (!s) {
    s = new Series();
    map.set(name, s);
  }
  return s;
}

export type RunSummary = ReturnType<Recorder["summary"]>;
