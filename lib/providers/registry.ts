import { type Config, ConfigError } from "../config/index.ts";
import type { Db } from "../db/db.ts";
import type { Providers } from "../payments/context.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { PaymentProvider, ProviderName } from "./provider.ts";
import { DEFAULT_RESILIENCE, type ResilienceOptions, resilientProvider } from "./resilience.ts";
import { attachRoutes, parseRoutes, type Routes } from "./routing.ts";
import { sandboxProvider } from "./sandbox.ts";
import { stripeProvider } from "./stripe.ts";
import { yookassaProvider } from "./yookassa.ts";

export { parseRoutes } from "./routing.ts";

export interface ProvidersOptions {
  log?: Logger;
  /** Adapters that replace (or add to) the configured ones, by name: tests plug stand-ins in here. */
  extra?: PaymentProvider[];
  /** Overrides of the resilience settings from the configuration (tests shorten the backoff). */
  resilience?: Partial<ResilienceOptions>;
}

/**
 * The configured providers, each behind its own timeout, retries, circuit breaker and bulkhead, and the currency
 * routing. PROVIDER_ROUTES reads like "RUB=yookassa|sandbox,*=stripe" (after `|`: where a payment's first attempt
 * goes while the provider before it is down). Unset, RUB goes to YooKassa and everything else to Stripe when they
 * are configured, and to the sandbox otherwise.
 */
export function createProviders(config: Config, db: Db, options: ProvidersOptions = {}): Providers {
  const { resilience: settings, stripe, yookassa, sandbox } = config.providers;
  const resilience: ResilienceOptions = {
    ...DEFAULT_RESILIENCE,
    timeoutMs: settings.timeoutMs,
    retries: settings.retries,
    circuitThreshold: settings.circuitThreshold,
    circuitResetMs: settings.circuitResetSeconds * 1000,
    concurrency: settings.concurrency,
    queue: settings.concurrency,
    ...options.resilience,
  };
  const explicitRoutes = config.providers.routes ? parseRoutes(config.providers.routes) : undefined;

  const adapters = new Map<ProviderName, PaymentProvider>();
  if (stripe) {
    adapters.set(
      "stripe",
      stripeProvider({
        secretKey: stripe.secretKey,
        webhookSecret: stripe.webhookSecret,
        apiBase: stripe.apiBase,
        timeoutMs: resilience.timeoutMs,
      }),
    );
  }
  if (yookassa) {
    adapters.set(
      "yookassa",
      yookassaProvider({
        shopId: yookassa.shopId,
        secretKey: yookassa.secretKey,
        apiBase: yookassa.apiBase,
        allowedIps: yookassa.allowedIps,
        timeoutMs: resilience.timeoutMs,
      }),
    );
  }
  // The sandbox answers "succeeded" without moving money: in production it exists only while no real provider
  // is configured, or when the routes name it on purpose.
  const sandboxWanted =
    config.env !== "production" ||
    adapters.size === 0 ||
    [...(explicitRoutes?.values() ?? [])].some((chain) => chain.includes("sandbox"));
  if (sandboxWanted) {
    adapters.set(
      "sandbox",
      sandboxProvider({
        db,
        latencyMs: sandbox.latencyMs,
        publicBaseUrl: config.publicBaseUrl,
        webhookSecret: sandbox.webhookSecret,
        asyncDelayMs: sandbox.asyncDelayMs,
        log: options.log,
      }),
    );
  }
  for (const provider of options.extra ?? []) adapters.set(provider.name, provider);

  const byName = new Map<ProviderName, PaymentProvider>();
  for (const [name, adapter] of adapters) byName.set(name, resilientProvider(adapter, resilience));

  const routes = explicitRoutes ?? defaultRoutes(byName);
  for (const [currency, chain] of routes) {
    const missing = chain.find((name) => !byName.has(name));
    if (missing) {
      throw new ConfigError(
        `Invalid configuration: PROVIDER_ROUTES sends ${currency} to ${missing}, which is not configured`,
      );
    }
  }
  const providers: Providers = {
    get: (name) => byName.get(name),
    forCurrency: (currency) => (routes.get(currency) ?? routes.get("*"))?.[0] ?? fallbackName(byName),
    names: [...byName.keys()],
  };
  attachRoutes(providers, routes);
  return providers;
}

function defaultRoutes(byName: Map<ProviderName, PaymentProvider>): Routes {
  const routes: Routes = new Map();
  if (byName.has("yookassa")) routes.set("RUB", ["yookassa"]);
  routes.set("*", [byName.has("stripe") ? "stripe" : fallbackName(byName)]);
  return routes;
}

function fallbackName(byName: Map<ProviderName, PaymentProvider>): ProviderName {
  return byName.has("sandbox") ? "sandbox" : ([...byName.keys()][0] ?? "sandbox");
}
