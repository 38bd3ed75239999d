import { ProviderError, type ProviderName, providerIdempotencyKey } from "../providers/provider.ts";
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
    ctx.log.warn(
      { err: error instanceof ProviderError ? error.message : error, payment_id: payment.id },
      "provider void failed after cancel",
    );
  }
}
