import {
  BrokenCircuitError,
  BulkheadRejectedError,
  bulkhead,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  retry,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
} from "cockatiel";
import { metrics } from "../telemetry/metrics.ts";
import {
  type PaymentProvider,
  ProviderError,
  type ProviderHealth,
  ProviderRequestRejected,
} from "./provider.ts";

export interface ResilienceOptions {
  /** Per attempt; a call that takes longer has an unknown outcome. */
  timeoutMs: number;
  /** Further attempts after the first, for transient failures only. */
  retries: number;
  retryInitialDelayMs: number;
  retryMaxDelayMs: number;
  /** Consecutive failed calls (after their retries) that open the circuit. */
  circuitThreshold: number;
  /** How long the circuit stays open before one trial call is let through. */
  circuitResetMs: number;
  /** Calls in flight at once per provider, and how many more may wait for a slot. */
  concurrency: number;
  queue: number;
}

export const DEFAULT_RESILIENCE: ResilienceOptions = {
  timeoutMs: 10_000,
  retries: 2,
  retryInitialDelayMs: 200,
  retryMaxDelayMs: 2_000,
  circuitThreshold: 5,
  circuitResetMs: 30_000,
  concurrency: 64,
  queue: 64,
};

// provider_circuit_state's documented values.
const GAUGE: Record<CircuitState, number> = {
  [CircuitState.Closed]: 0,
  [CircuitState.HalfOpen]: 1,
  [CircuitState.Open]: 2,
  [CircuitState.Isolated]: 2,
};

/** Failures that say something about the provider's health: not its refusals of a bad request. */
const isProviderFailure = (error: Error) =>
  error instanceof ProviderError &&
  !(error instanceof ProviderRequestRejected) &&
  error.retryAfterSeconds === undefined;

/**
 * Wraps a provider in, from the outside in: a bulkhead (at most `concurrency` calls in flight, a short queue, then
 * 503 at once), a circuit breaker (after `circuitThreshold` consecutive failures every call fails fast with
 * Retry-After until a trial call succeeds), retries with jittered exponential backoff, and a per-attempt timeout.
 *
 * Retrying is safe for every operation, authorize included, because every call carries an idempotency key
 * derived from our ids and every provider here dedupes by it: Stripe (Idempotency-Key) and YooKassa
 * (Idempotence-Key) return the first request's result for a repeated key, and the sandbox's ledger is unique per
 * key. So a retry after a timeout or a 5xx whose outcome is unknown can never charge twice; it can only learn the
 * outcome. Rejections (4xx) are not retried: the same request would be refused again.
 */
export function resilientProvider(inner: PaymentProvider, options: ResilienceOptions): PaymentProvider {
  const name = inner.name;
  const limiter = bulkhead(options.concurrency, options.queue);
  const breaker = circuitBreaker(handleWhen(isProviderFailure), {
    halfOpenAfter: options.circuitResetMs,
    breaker: new ConsecutiveBreaker(options.circuitThreshold),
  });
  const retries = retry(handleWhen(isProviderFailure), {
    maxAttempts: options.retries,
    backoff: new ExponentialBackoff({
      initialDelay: options.retryInitialDelayMs,
      maxDelay: options.retryMaxDelayMs,
    }),
  });
  const perAttempt = timeout(options.timeoutMs, TimeoutStrategy.Aggressive);

  let openedAt = 0;
  metrics.providerCircuitState.set({ provider: name }, 0);
  breaker.onStateChange((state) => {
    if (state === CircuitState.Open) openedAt = Date.now();
    metrics.providerCircuitState.set({ provider: name }, GAUGE[state]);
  });

  const retryAfterSeconds = () =>
    Math.max(1, Math.ceil((openedAt + options.circuitResetMs - Date.now()) / 1000));

  async function run<T>(call: () => Promise<T>): Promise<T> {
    // Once an attempt may have acted (timed out, 5xx), no later answer proves that nothing happened: a retry
    // refused with 429 or 503 says nothing about the attempt before it. Reporting such a call as definite let the
    // payment go back to requires_confirmation while the provider had charged it, and a new confirm charge again.
    let uncertain = false;
    const attempt = () =>
      once(call).catch((error: unknown) => {
        if (error instanceof ProviderError && !error.definite) uncertain = true;
        throw error;
      });
    try {
      return await limiter.execute(() => breaker.execute(() => retries.execute(attempt)));
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        throw new ProviderError(name, `${name} circuit is open`, true, retryAfterSeconds());
      }
      if (error instanceof BulkheadRejectedError) {
        throw new ProviderError(name, `${name} has too many calls in flight`, true, 1);
      }
      if (uncertain && error instanceof ProviderError && error.definite) {
        throw new ProviderError(name, `${error.message} (an earlier attempt's outcome is unknown)`, false);
      }
      throw error;
    }
  }

  /**
   * One attempt under the timeout. A timeout, or anything but a ProviderError (a bug, an unparseable answer), is an
   * unknown outcome: the provider may have acted.
   */
  async function once<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await perAttempt.execute(() => call());
    } catch (error) {
      if (error instanceof ProviderError) throw error;
      if (error instanceof TaskCancelledError) {
        throw new ProviderError(name, `${name} did not answer within ${options.timeoutMs} ms`, false);
      }
      throw new ProviderError(
        name,
        `${name} call failed: ${(error as Error)?.message ?? String(error)}`,
        false,
      );
    }
  }

  const wrapped: PaymentProvider = {
    name,
    authorize: (payment, key) => run(() => inner.authorize(payment, key)),
    capture: (payment, amount, key) => run(() => inner.capture(payment, amount, key)),
    cancel: (payment, key) => run(() => inner.cancel(payment, key)),
    refund: (payment, refund, key) => run(() => inner.refund(payment, refund, key)),
    retrieve: (payment, key) => run(() => inner.retrieve(payment, key)),
    health: (): ProviderHealth =>
      breaker.state === CircuitState.Closed
        ? "ok"
        : breaker.state === CircuitState.HalfOpen
          ? "degraded"
          : "down",
  };
  const { retrieveRefund, parseWebhook } = inner;
  if (retrieveRefund) {
    wrapped.retrieveRefund = (payment, refund, key) =>
      run(() => retrieveRefund.call(inner, payment, refund, key));
  }
  // Notifications are not calls we make: they are verified without the breaker (YooKassa's re-fetch has its own
  // timeout), so a provider that is down for our calls can still tell us what happened.
  if (parseWebhook) wrapped.parseWebhook = (request) => parseWebhook.call(inner, request);
  return wrapped;
}
