import {
  type PaymentProvider,
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
    // Refused, not failed: the authorization may be gone already (it lapsed), or the provider moved the payment on
    // without us (captured it). Its own state says which; only money it still holds or took needs someone.
    if (error instanceof ProviderRequestRejected && (await holdsMoney(ctx, provider, payment))) {
      metrics.providerDiscrepancies.inc({ provider: payment.provider, kind: "cancel_refused" });
      ctx.log.error(
        { err: error.message, payment_id: payment.id, provider: payment.provider },
        "provider refused to cancel a payment canceled here and holds its money: refund or void it at the provider",
      );
      return;
    }
    ctx.log.warn(
      { err: error instanceof ProviderError ? error.message : error, payment_id: payment.id },
      "provider void failed after cancel",
    );
  }
}

/** Whether the provider says it took or still holds the payment's money; unknown (unreachable) counts as no. */
async function holdsMoney(
  ctx: VerbContext,
  provider: PaymentProvider,
  payment: PaymentRow,
): Promise<boolean> {
  try {
    const outcome = await provider.retrieve(
      toProviderPayment(payment),
      providerIdempotencyKey(payment.id, "authorize", payment.attempt),
    );
    return outcome.status === "succeeded" || outcome.status === "requires_capture";
  } catch (error) {
    ctx.log.warn(
      { err: error instanceof ProviderError ? error.message : error, payment_id: payment.id },
      "provider refused a void and could not say why",
    );
    return false;
  }
}
