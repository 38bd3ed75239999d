import type { Providers } from "../payments/context.ts";
import { PROVIDER_NAMES, type ProviderName } from "./provider.ts";

/** Currency (or "*") → providers in order of preference: the first one, then failovers. */
export type Routes = Map<string, ProviderName[]>;

/**
 * Parses PROVIDER_ROUTES: comma-separated `CURRENCY=provider[|fallback…]` entries, `*` for every other currency,
 * e.g. "RUB=yookassa|sandbox,*=stripe".
 */
export function parseRoutes(value: string | undefined): Routes {
  const routes: Routes = new Map();
  for (const entry of (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [currency, chain, ...rest] = entry.split("=").map((s) => s.trim());
    const names = (chain ?? "").split("|").map((s) => s.trim());
    if (
      !currency ||
      rest.length > 0 ||
      !/^([A-Za-z]{3}|\*)$/.test(currency) ||
      names.some((n) => !(PROVIDER_NAMES as readonly string[]).includes(n)) ||
      new Set(names).size !== names.length
    ) {
      throw new Error(
        `PROVIDER_ROUTES entry "${entry}" must look like RUB=yookassa or RUB=yookassa|sandbox (providers: ${PROVIDER_NAMES.join(", ")})`,
      );
    }
    routes.set(currency.toUpperCase(), names as ProviderName[]);
  }
  return routes;
}

const routesOf = new WeakMap<Providers, Routes>();

/** Remembers the routes a Providers object was built with (createProviders does this). */
export function attachRoutes(providers: Providers, routes: Routes): void {
  routesOf.set(providers, routes);
}

/** The providers a payment in this currency may go to, in order of preference. */
export function routeFor(providers: Providers, currency: string): readonly ProviderName[] {
  const routes = routesOf.get(providers);
  return routes?.get(currency) ?? routes?.get("*") ?? [providers.forCurrency(currency)];
}

/**
 * Where a payment's first authorize goes when its provider's circuit is open: the next provider of its currency's
 * route whose circuit is not open. Only a payment never sent to any provider (no earlier attempt) may move, and
 * only along its route — a payment created for a provider outside the route (the client chose it) stays put.
 * Undefined means: keep the current provider.
 */
export function failoverProvider(
  providers: Providers,
  payment: { provider: string; currency: string; previousAttempts: number },
): ProviderName | undefined {
  if (payment.previousAttempts !== 0) return undefined;
  const current = providers.get(payment.provider as ProviderName);
  if (current?.health?.() !== "down") return undefined;
  const route = routeFor(providers, payment.currency);
  const position = route.indexOf(payment.provider as ProviderName);
  if (position < 0) return undefined;
  return route.slice(position + 1).find((name) => {
    const candidate = providers.get(name);
    return candidate !== undefined && candidate.health?.() !== "down";
  });
}
