import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { metrics } from "../telemetry/metrics.ts";
import {
  type PaymentProvider,
  ProviderError,
  type ProviderName,
  type ProviderOutcome,
  type ProviderPayment,
  ProviderRequestRejected,
} from "./provider.ts";
import { DEFAULT_RESILIENCE, type ResilienceOptions, resilientProvider } from "./resilience.ts";

type Step = "ok" | "definite" | "unknown" | "rejected" | "hang" | "bug";

/** A provider that answers each authorize with the next scripted step ("ok" once the script runs out). */
function scripted(name: ProviderName, steps: Step[]) {
  const keys: string[] = [];
  const provider: PaymentProvider = {
    name,
    async authorize(_payment, key) {
      keys.push(key);
      const step = steps.shift() ?? "ok";
      if (step === "hang") await sleep(5_000);
      if (step === "definite") throw new ProviderError(name, "503", true);
      if (step === "unknown") throw new ProviderError(name, "500", false);
      if (step === "rejected") throw new ProviderRequestRejected(name, "400");
      if (step === "bug") throw new TypeError("cannot read properties of undefined");
      return { status: "succeeded", providerPaymentId: "x", amountCaptured: 100 } satisfies ProviderOutcome;
    },
    capture: async () => ({ status: "succeeded", providerPaymentId: "x", amountCaptured: 100 }),
    cancel: async () => ({ status: "canceled" }),
    refund: async () => "succeeded",
    retrieve: async () => ({ status: "processing" }),
    parseWebhook: async () => ({ eventId: "evt_1", type: "t", occurredAt: new Date() }),
  };
  return { provider, keys };
}

const fast: ResilienceOptions = {
  ...DEFAULT_RESILIENCE,
  // Generous: no call here should time out unless it hangs on purpose (those tests shorten it).
  timeoutMs: 2_000,
  retries: 2,
  retryInitialDelayMs: 1,
  retryMaxDelayMs: 5,
  circuitThreshold: 3,
  circuitResetMs: 300,
  concurrency: 4,
  queue: 0,
};
const payment: ProviderPayment = {
  paymentId: "pay_1",
  merchantId: "m",
  amount: 100,
  currency: "USD",
  paymentMethod: "pm_card_visa",
  captureMethod: "automatic",
};
const circuitGauge = async (provider: ProviderName) =>
  (await metrics.providerCircuitState.get()).values.find((v) => v.labels.provider === provider)?.value;

describe("retries", () => {
  it("retries transient failures with the same idempotency key", async () => {
    const { provider, keys } = scripted("sandbox", ["unknown", "definite"]);
    const outcome = await resilientProvider(provider, fast).authorize(payment, "pay_1:authorize:1");
    expect(outcome.status).toBe("succeeded");
    expect(keys).toEqual(["pay_1:authorize:1", "pay_1:authorize:1", "pay_1:authorize:1"]);
  });

  it("gives up after the configured retries, keeping the last error's meaning", async () => {
    const { provider, keys } = scripted("sandbox", ["definite", "definite", "unknown"]);
    const error = await resilientProvider(provider, fast)
      .authorize(payment, "k")
      .catch((e) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.definite).toBe(false);
    expect(keys).toHaveLength(3);
  });

  it("does not retry a rejected request", async () => {
    const { provider, keys } = scripted("sandbox", ["rejected"]);
    const error = await resilientProvider(provider, fast)
      .authorize(payment, "k")
      .catch((e) => e);
    expect(error).toBeInstanceOf(ProviderRequestRejected);
    expect(keys).toHaveLength(1);
  });

  it("times out a hanging attempt as an unknown outcome, and retries it", async () => {
    const { provider, keys } = scripted("sandbox", ["hang", "hang", "hang"]);
    const error = await resilientProvider(provider, { ...fast, timeoutMs: 100 })
      .authorize(payment, "k")
      .catch((e) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.definite).toBe(false);
    expect(error.message).toMatch(/did not answer within 100 ms/);
    expect(keys).toHaveLength(3);
  });

  it("treats an adapter's unexpected exception as an unknown outcome", async () => {
    const { provider } = scripted("sandbox", ["bug", "bug", "bug"]);
    const error = await resilientProvider(provider, fast)
      .authorize(payment, "k")
      .catch((e) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.definite).toBe(false);
  });
});

describe("circuit breaker", () => {
  it("opens after consecutive failed calls, fails fast with Retry-After, and closes after a good trial", async () => {
    const steps: Step[] = Array.from({ length: 9 }, () => "definite");
    const { provider, keys } = scripted("stripe", steps);
    const wrapped = resilientProvider(provider, fast);
    expect(wrapped.health?.()).toBe("ok");
    expect(await circuitGauge("stripe")).toBe(0);
    for (let i = 0; i < 3; i++) await wrapped.authorize(payment, `k${i}`).catch(() => {});
    expect(keys).toHaveLength(9);
    expect(wrapped.health?.()).toBe("down");
    expect(await circuitGauge("stripe")).toBe(2);

    const open = await wrapped.authorize(payment, "k4").catch((e) => e);
    expect(open).toBeInstanceOf(ProviderError);
    expect(open.definite).toBe(true);
    expect(open.retryAfterSeconds).toBe(1);
    expect(keys).toHaveLength(9);

    await sleep(350);
    expect((await wrapped.authorize(payment, "k5")).status).toBe("succeeded");
    expect(wrapped.health?.()).toBe("ok");
    expect(await circuitGauge("stripe")).toBe(0);
  });

  it("is not opened by rejected requests, which say nothing about the provider's health", async () => {
    const { provider } = scripted("yookassa", ["rejected", "rejected", "rejected", "rejected"]);
    const wrapped = resilientProvider(provider, fast);
    for (let i = 0; i < 4; i++) await wrapped.authorize(payment, `k${i}`).catch(() => {});
    expect(wrapped.health?.()).toBe("ok");
  });

  it("still verifies notifications while the circuit is open", async () => {
    const { provider } = scripted(
      "sandbox",
      Array.from({ length: 9 }, () => "unknown" as const),
    );
    const wrapped = resilientProvider(provider, fast);
    for (let i = 0; i < 3; i++) await wrapped.authorize(payment, `k${i}`).catch(() => {});
    expect(wrapped.health?.()).toBe("down");
    await expect(
      wrapped.parseWebhook?.({ rawBody: "", headers: new Headers(), clientIp: "" }),
    ).resolves.toMatchObject({
      eventId: "evt_1",
    });
  });
});

describe("bulkhead", () => {
  it("refuses calls beyond the concurrency limit at once, with Retry-After", async () => {
    const { provider } = scripted("sandbox", ["hang"]);
    const wrapped = resilientProvider(provider, {
      ...fast,
      concurrency: 1,
      queue: 0,
      retries: 0,
      timeoutMs: 200,
    });
    const first = wrapped.authorize(payment, "a").catch((e) => e);
    const second = await wrapped.authorize(payment, "b").catch((e) => e);
    expect(second).toBeInstanceOf(ProviderError);
    expect(second.definite).toBe(true);
    expect(second.retryAfterSeconds).toBe(1);
    await first;
  });
});
