import { metrics } from "../telemetry/metrics.ts";
import { withClientSpan } from "../telemetry/tracing.ts";
import { ProviderError, type ProviderName } from "./provider.ts";

/** Runs one provider call with its latency and outcome counted. */
export async function callProvider<T>(
  provider: ProviderName,
  operation: string,
  call: () => Promise<T>,
): Promise<T> {
  const end = metrics.providerDuration.startTimer({ provider, operation });
  try {
    const attributes = { "payment.provider": provider, "payment.operation": operation };
    const result = await withClientSpan(`${provider} ${operation}`, attributes, call);
    metrics.providerRequests.inc({ provider, operation, outcome: "success" });
    return result;
  } catch (error) {
    const outcome =
      error instanceof ProviderError && error.retryAfterSeconds !== undefined
        ? "circuit_open"
        : error instanceof ProviderError && !error.definite
          ? "timeout"
          : "error";
    metrics.providerRequests.inc({ provider, operation, outcome });
    throw error;
  } finally {
    end();
  }
}
