import { randomUUID } from "node:crypto";
import { ApiError, invalidState } from "../http/errors.ts";
import {
  ProviderError,
  type ProviderName,
  type ProviderOutcome,
  ProviderRequestRejected,
  providerIdempotencyKey,
} from "../providers/provider.ts";
import type { VerbContext } from "./context.ts";
import { toProviderPayment } from "./provider-payment.ts";
import type { PaymentRow } from "./serialize.ts";
import { afterSettleCommit, settleFromRequiresAction } from "./settle.ts";
import type { PaymentStatus } from "./state-machine.ts";

/** What the provider said to canceling a payment that waits for its customer's 3-D Secure answer. */
export type ProviderCancel =
  /** Canceled there (or nothing was ever created there): cancel it here. */
  | { kind: "canceled" }
  /**
   * The customer answered first: the provider's outcome is applied here. An authorization (requires_capture) can
   * still be canceled here and voided there; anything else cannot be canceled any more.
   */
  | { kind: "moved_on"; status: PaymentStatus }
  /** The provider keeps it open while its customer authenticates (YooKassa does): nothing can be canceled yet. */
  | { kind: "still_waiting" };

/**
 * Cancels a payment in requires_action at its provider before it is canceled here. The customer may be answering
 * the provider's challenge at this very moment and only the provider knows who came first. Canceled here first, a
 * payment the customer then completed at the provider would be money taken for a canceled payment; asked first,
 * the provider either cancels it (it can then never be charged) or says where it went, which is applied here as
 * any provider answer is.
 *
 * A provider that cannot be reached changes nothing: 502/503 provider_unavailable, to retry.
 */
export async function cancelAtProviderFirst(ctx: VerbContext, payment: PaymentRow): Promise<ProviderCancel> {
  const provider = ctx.providers.get(payment.provider as ProviderName);
  if (!provider)
    throw new ApiError("provider_unavailable", `Provider ${payment.provider} is not configured.`);
  const asked = toProviderPayment(payment);
  let outcome: ProviderOutcome;
  try {
    // A key of this request's own: a provider may keep a refusal under its key (Stripe keeps a key's answer for
    // 24 h), and one given while the customer authenticated must not answer the merchant's next try. Retries
    // within this call share it.
    const key = providerIdempotencyKey(payment.id, "cancel-first", `${payment.attempt}.${randomUUID()}`);
    outcome = await provider.cancel(asked, key);
  } catch (error) {
    if (!(error instanceof ProviderRequestRejected)) throw unavailable(ctx, payment, error);
    // Refused: the payment is no longer cancelable there, or not yet. Its current state there decides.
    try {
      outcome = await provider.retrieve(
        asked,
        providerIdempotencyKey(payment.id, "authorize", payment.attempt),
      );
    } catch (retrieveError) {
      throw unavailable(ctx, payment, retrieveError);
    }
  }
  if (outcome.status === "canceled") return { kind: "canceled" };
  if (outcome.status === "requires_action") return { kind: "still_waiting" };
  const settled = await ctx.db.transaction((tx) =>
    settleFromRequiresAction(tx, ctx, payment.id, outcome, "payment.cancel.refused"),
  );
  if (settled) await afterSettleCommit(ctx, settled);
  return { kind: "moved_on", status: settled?.status ?? outcome.status };
}

/**
 * Runs a cancel here that refuses ("ask_provider") when it finds, under its locks, a payment waiting for 3-D Secure
 * that was not canceled at its provider; then `cancelWaiting` asks the providers first (returning the ids canceled
 * there) and the cancel runs once more. Most cancels find no such payment and take one transaction, no extra read.
 * A payment that reaches 3-D Secure again between the two (a new confirm) makes the second refuse too: 409, retry.
 */
export async function cancelAskingProvidersFirst<T>(
  cancelHere: (canceledThere: string[]) => Promise<T | "ask_provider">,
  cancelWaiting: () => Promise<string[]>,
  conflict: string,
): Promise<T> {
  const first = await cancelHere([]);
  if (first !== "ask_provider") return first;
  const second = await cancelHere(await cancelWaiting());
  if (second !== "ask_provider") return second;
  throw invalidState(conflict);
}

function unavailable(ctx: VerbContext, payment: PaymentRow, error: unknown): unknown {
  if (!(error instanceof ProviderError)) return error;
  // The provider's own message stays in the log: it can name accounts, keys or internals.
  ctx.log.warn(
    { payment_id: payment.id, provider: payment.provider, err: error.message },
    "provider cancel failed",
  );
  const open = error.retryAfterSeconds !== undefined;
  return new ApiError(
    "provider_unavailable",
    "The payment provider could not cancel the payment right now; nothing changed. Retry later.",
    { status: open ? 503 : 502, retryAfter: error.retryAfterSeconds },
  );
}
