import type { Providers } from "../payments/context.ts";
import { CURRENCIES } from "../payments/money.ts";
import { TERMINAL_PAYMENT_STATUSES } from "../payments/state-machine.ts";
import { isWebhookVerifier } from "../providers/provider.ts";
import { DISCREPANCY_KINDS, metrics } from "./metrics.ts";

/**
 * Series that exist, at 0, from the moment an instance starts. rate() and increase() need two samples: without a
 * 0 before it, the first failed payment on a fresh pod (and on a scale-to-zero service every pod is fresh) would
 * never show up in an alert, and NoPaymentsProcessed could not tell "no payments" from "no series yet".
 *
 * Bounded: providers × 3 terminal statuses × 9 currencies for payments_total, a handful for the rest. Adding 0 to
 * a counter or gauge never changes a value that is already there.
 */
export function initializeMetrics(providers: Providers): void {
  for (const provider of providers.names) {
    for (const status of TERMINAL_PAYMENT_STATUSES) {
      for (const currency of CURRENCIES) metrics.paymentsTotal.inc({ provider, status, currency }, 0);
    }
    metrics.providerCircuitState.inc({ provider }, 0); // closed: a new breaker is
    for (const kind of DISCREPANCY_KINDS) metrics.providerDiscrepancies.inc({ provider, kind }, 0);
  }
  for (const provider of providers.names) {
    const instance = providers.get(provider);
    if (!instance || !isWebhookVerifier(instance)) continue;
    metrics.webhooksReceived.inc({ provider }, 0);
    metrics.webhooksFailed.inc({ provider }, 0);
  }
  for (const scope of ["ip", "merchant"]) metrics.rateLimited.inc({ scope }, 0);
  // Down until the first readiness check (Knative runs it before routing any request here) says otherwise.
  for (const integration of ["database", "cache"]) metrics.integrationUp.inc({ integration }, 0);
}
