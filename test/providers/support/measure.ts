/**
 * Measurements behind the provider layer's design (not a test: timings vary by machine, nothing asserts them).
 *   npx tsx test/providers/support/measure.ts
 * 1. cost of the resilience wrapper (bulkhead, breaker, retry, timeout) per provider call;
 * 2. confirm latency in-process: sandbox, a provider that hangs until the timeout, and an open circuit.
 */
import { loadConfig } from "../../../lib/config/index.ts";
import { openPglite } from "../../../lib/db/pglite.ts";
import type { PaymentProvider, ProviderPayment } from "../../../lib/providers/provider.ts";
import { DEFAULT_RESILIENCE, resilientProvider } from "../../../lib/providers/resilience.ts";
import { loadApp } from "../../../lib/runtime/apps.ts";
import { mintToken } from "../../../lib/runtime/dev-token.ts";
import { createService } from "../../../lib/runtime/service.ts";
import { startLocalServer, unusedPort } from "./http-server.ts";

const noop: PaymentProvider = {
  name: "sandbox",
  authorize: async () => ({ status: "succeeded", providerPaymentId: "x", amountCaptured: 1 }),
  capture: async () => ({ status: "succeeded", providerPaymentId: "x", amountCaptured: 1 }),
  cancel: async () => ({ status: "canceled" }),
  refund: async () => "succeeded",
  retrieve: async () => ({ status: "processing" }),
};
const payment: ProviderPayment = {
  paymentId: "pay_1",
  merchantId: "m",
  amount: 1,
  currency: "USD",
  paymentMethod: "pm_card_visa",
  captureMethod: "automatic",
};

async function perCall(provider: PaymentProvider, n: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < n; i++) await provider.authorize(payment, "k");
  return ((performance.now() - started) * 1000) / n;
}

const wrapped = resilientProvider(noop, DEFAULT_RESILIENCE);
await perCall(noop, 5_000);
await perCall(wrapped, 5_000);
const bare = await perCall(noop, 50_000);
const guarded = await perCall(wrapped, 50_000);
console.log(
  `provider call: bare ${bare.toFixed(2)} µs, with resilience ${guarded.toFixed(2)} µs (+${(guarded - bare).toFixed(2)} µs)`,
);

async function confirmLatencies(env: Record<string, string>, method: string, n: number, warm = 0) {
  const config = loadConfig({
    NODE_ENV: "test",
    JWT_SECRET: "m".repeat(32),
    RATE_LIMIT_RPS: "100000",
    RATE_LIMIT_BURST: "200000",
    ...env,
  });
  const service = await createService(config, { db: await openPglite(), migrate: true });
  const app = await loadApp(service, "all");
  const headers = {
    Authorization: `Bearer ${await mintToken(config.auth.secret as Uint8Array, "acct_measure")}`,
    "Content-Type": "application/json",
  };
  const post = async (path: string, body: unknown) =>
    (await app.request(path, { method: "POST", headers, body: JSON.stringify(body) })).json();
  const times: number[] = [];
  const statuses = new Map<number, number>();
  for (let i = 0; i < warm + n; i++) {
    const order = await post("/v1/orders", { amount: 1000, currency: "USD" });
    const created = await post("/v1/payments", { order_id: order.id, payment_method: method });
    const started = performance.now();
    const res = await app.request(`/v1/payments/${created.id}/confirm`, {
      method: "POST",
      headers,
      body: "{}",
    });
    if (i >= warm) {
      times.push(performance.now() - started);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
  }
  await service.db.close();
  times.sort((a, b) => a - b);
  const at = (q: number) => (times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0).toFixed(1);
  return `p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, statuses ${JSON.stringify(Object.fromEntries(statuses))}`;
}

console.log(`confirm, sandbox visa: ${await confirmLatencies({}, "pm_card_visa", 200, 20)}`);

// Stripe that accepts connections and never answers: each confirm waits out the per-attempt timeout.
const silent = await startLocalServer(() => {});
const hanging = {
  STRIPE_SECRET_KEY: "sk_test_m",
  STRIPE_API_BASE: silent.url,
  PROVIDER_ROUTES: "*=stripe",
  PROVIDER_TIMEOUT_MS: "1000",
  PROVIDER_RETRIES: "0",
  PROVIDER_CIRCUIT_THRESHOLD: "1000",
};
console.log(
  `confirm, provider hangs (1 s timeout, no retries): ${await confirmLatencies(hanging, "pm_card_visa", 5)}`,
);
console.log(
  `confirm, same provider with its circuit open: ${await confirmLatencies(
    { ...hanging, PROVIDER_CIRCUIT_THRESHOLD: "1" },
    "pm_card_visa",
    100,
    1,
  )}`,
);
await silent.close();
const refused = await unusedPort();
console.log(
  `confirm, provider refuses connections (circuit closed, threshold 1000): ${await confirmLatencies(
    { ...hanging, STRIPE_API_BASE: `http://127.0.0.1:${refused}` },
    "pm_card_visa",
    50,
  )}`,
);
process.exit(0);
