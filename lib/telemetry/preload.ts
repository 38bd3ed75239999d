import { whenIoredisLoads } from "../cache/redis.ts";
import type { Config, OtelConfig } from "../config/index.ts";
import type { Logger } from "./logger.ts";
import { registry } from "./metrics.ts";
import type { OtelHandle } from "./otel.ts";

/**
 * Starting and stopping OpenTelemetry, without loading it unless asked to. Locally nothing is configured and the
 * SDK (several hundred modules) is never imported: start-up and memory stay as they are. With an exporter
 * configured it is imported once, before the server is built.
 */
let handle: OtelHandle | undefined;
let refreshBeforeExport: () => Promise<void> = async () => {};

export function telemetryEnabled(otel: OtelConfig): boolean {
  return otel.traces !== "none" || otel.metrics !== "none";
}

export async function startTelemetry(config: Config, log: Logger): Promise<boolean> {
  if (handle || !telemetryEnabled(config.otel)) return false;
  const { startOtel } = await import("./otel.ts");
  handle = await startOtel(config, {
    log,
    beforeMetricsExport: () => refreshBeforeExport(),
    // The modules this process itself uses: OpenTelemetry may be bundled apart from them (scripts/bundle.ts).
    instrumented: {
      registry,
      loadPg: () => import("pg"),
      loadNeon: () => import("@neondatabase/serverless"),
      whenIoredisLoads,
    },
  });
  return true;
}

/**
 * What a scrape of /metrics does first (gauges read from the database), run before each metrics push as well, so
 * pushed gauges are as fresh as scraped ones.
 */
export function refreshMetricsBeforeExport(refresh: () => Promise<void>): void {
  refreshBeforeExport = refresh;
}

/**
 * Sends what is still buffered: the spans of the last requests and one final metrics push, so the counts of a pod
 * that scales to zero are not lost. Bounded, because Kubernetes kills the pod at the end of its grace period.
 */
export async function shutdownTelemetry(timeoutMs = 5_000): Promise<void> {
  const current = handle;
  handle = undefined;
  if (!current) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    current.shutdown().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}
