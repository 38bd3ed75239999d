import type { Config } from "../config/index.ts";
import type { Db } from "../db/db.ts";
import type { Providers } from "../payments/context.ts";
import type { PaymentProvider, ProviderName } from "./provider.ts";
import { sandboxProvider } from "./sandbox.ts";

/**
 * The configured providers and the currency routing. PROVIDER_ROUTES reads like "RUB=yookassa,*=stripe";
 * without it every currency goes to the sandbox.
 */
export function createProviders(config: Config, db: Db, extra: PaymentProvider[] = []): Providers {
  const byName = new Map<ProviderName, PaymentProvider>();
  byName.set(
    "sandbox",
    sandboxProvider({
      db,
      latencyMs: config.providers.sandbox.latencyMs,
      publicBaseUrl: config.publicBaseUrl,
    }),
  );
  for (const provider of extra) byName.set(provider.name, provider);
  const routes = parseRoutes(config.providers.routes);
  return {
    get: (name) => byName.get(name),
    forCurrency: (currency) => routes.get(currency) ?? routes.get("*") ?? "sandbox",
    names: [...byName.keys()],
  };
}

export function parseRoutes(value: string | undefined): Map<string, ProviderName> {
  const routes = new Map<string, ProviderName>();
  for (const entry of (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [currency, provider] = entry.split("=").map((s) => s.trim());
    if (!currency || !provider || !["sandbox", "stripe", "yookassa"].includes(provider)) {
      throw new Error(`PROVIDER_ROUTES entry "${entry}" must look like RUB=yookassa`);
    }
    routes.set(currency.toUpperCase(), provider as ProviderName);
  }
  return routes;
}
