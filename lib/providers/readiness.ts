import type { Providers } from "../payments/context.ts";
import type { ProviderHealth } from "./provider.ts";

/**
 * Each provider's circuit, for /ready. A provider that is down degrades readiness but does not fail it: every
 * instance sees the same provider, so taking pods out of rotation would not help, and the other providers and
 * the read paths still work.
 */
export function providerReadiness(providers: Providers): Record<string, ProviderHealth> {
  const checks: Record<string, ProviderHealth> = {};
  for (const name of providers.names) {
    const health = providers.get(name)?.health?.();
    if (health) checks[`provider_${name}`] = health;
  }
  return checks;
}
