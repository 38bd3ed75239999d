import {
  ProviderError,
  type ProviderName,
  ProviderRequestRejected,
  providerIdempotencyKey,
} from "../providers/provider.ts";
import { metrics } from "../telemetry/metrics.ts";
import type { VerbContext } from "./context.ts";
import { toProviderPayment } from "./provider-payment.ts";
import type { PaymentRow } from "./serialize.ts";

/**
 * Releases an authorization at the provider after the payment is already canceled in our database. Our state is
 * decided; a failed void is logged for follow-up (an uncaptured authorization also lapses at the provider).
 */
export async function voidAtProvider(ctx: VerbContext, payment: PaymentRow): Promise<void> {
  const provider = ctx.providers.get(payment.provider as ProviderName);
  if (!provider) return;
  try {
    await provider.cancel(
      toProviderPayment(payment),
      providerIdempotencyKey(payment.id, "cancel", payment.attempt),
    );
  } catch (error) {
    // Refused, not failed: the provider has moved the payment on without us (a customer who finished 3-D Secure
    // as the merchant canceled, say) and may have charged it. Our state stays canceled; someone must look.
    if (error instanceof ProviderRequestRejected) {
      metrics.providerDiscrepancies.inc({ provider: payment.provider, kind: "cancel_refused" });
      ctx.log.error(
        { err: error.message, payment_id: payment.id, provider: payment.provider },
        "provider refused to cancel a payment canceled here: check whether it charged the customer, refund if so",
      );
      return;
    }
    ctx.log.warn(
      { err: error instanceof ProviderError ? error.message : error, payment_id: payment.id },
      "provider void failed after cancel",
    );
  }
}
