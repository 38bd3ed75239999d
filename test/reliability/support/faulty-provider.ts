import { setTimeout as sleep } from "node:timers/promises";
import { type PaymentProvider, ProviderError } from "../../../lib/providers/provider.ts";

/**
 * How the provider behaves right now:
 * - ok: as the adapter does;
 * - slow: every call takes `slowMs` longer;
 * - error: 5xx answers, half of them definite (nothing happened: the sandbox's own 503) and half after the provider
 *   acted (a 500 whose outcome is unknown, as Stripe's and YooKassa's 5xx are);
 * - hang: no answer within any timeout, half of the requests never arrived and half were acted on with the answer
 *   lost on the way back.
 */
export type ProviderMode = "ok" | "slow" | "error" | "hang";

export interface FaultyProvider {
  provider: PaymentProvider;
  mode: ProviderMode;
  /** Calls cut off by `hang` that are still sleeping; wait for them before reading the provider's books. */
  settled(): Promise<void>;
}

/** Wraps an adapter (below the resilience layer, as a real provider's network would be) with switchable faults. */
export function faultyProvider(
  inner: PaymentProvider,
  options: { slowMs: number; hangMs: number },
): FaultyProvider {
  const hanging = new Set<Promise<unknown>>();
  let flip = false;
  const state: FaultyProvider = {
    mode: "ok",
    provider: undefined as unknown as PaymentProvider,
    async settled() {
      await Promise.allSettled([...hanging]);
    },
  };
  const hang = <T>(work: Promise<T> | undefined): Promise<never> => {
    const done = Promise.allSettled([work, sleep(options.hangMs)]);
    hanging.add(done);
    void done.then(() => hanging.delete(done));
    return done.then(() => {
      throw new ProviderError(inner.name, "no answer (injected hang)", false);
    });
  };
  const wrap =
    <A extends unknown[], T>(call: (...args: A) => Promise<T>) =>
    async (...args: A): Promise<T> => {
      flip = !flip;
      switch (state.mode) {
        case "ok":
          return call(...args);
        case "slow":
          await sleep(options.slowMs);
          return call(...args);
        case "error":
          if (flip) throw new ProviderError(inner.name, "503 (injected)", true);
          await call(...args);
          throw new ProviderError(inner.name, "500 after acting (injected)", false);
        case "hang":
          return hang(flip ? call(...args) : undefined);
      }
    };
  state.provider = {
    ...inner,
    name: inner.name,
    authorize: wrap(inner.authorize.bind(inner)),
    capture: wrap(inner.capture.bind(inner)),
    cancel: wrap(inner.cancel.bind(inner)),
    refund: wrap(inner.refund.bind(inner)),
    retrieve: wrap(inner.retrieve.bind(inner)),
    ...(inner.retrieveRefund ? { retrieveRefund: wrap(inner.retrieveRefund.bind(inner)) } : {}),
  };
  return state;
}
