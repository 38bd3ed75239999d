import type Stripe from "stripe";
import { failure } from "./failures.ts";
import type { Failure, ProviderOutcome } from "./provider.ts";

/** Stripe's decline and error codes onto ours (https://docs.stripe.com/declines/codes, /error-codes). */
export function stripeFailure(code?: string | null, declineCode?: string | null): Failure {
  if (declineCode === "insufficient_funds" || code === "insufficient_funds")
    return failure("insufficient_funds");
  if (declineCode === "expired_card" || code === "expired_card") return failure("expired_card");
  if (
    code === "authentication_required" ||
    code === "payment_intent_authentication_failure" ||
    declineCode === "authentication_required"
  ) {
    return failure("authentication_failed");
  }
  return failure("card_declined");
}

/** A PaymentIntent's status in our terms. */
export function intentOutcome(intent: Stripe.PaymentIntent): ProviderOutcome {
  const id = intent.id;
  switch (intent.status) {
    case "succeeded":
      return { status: "succeeded", providerPaymentId: id, amountCaptured: intent.amount_received };
    case "requires_capture":
      return {
        status: "requires_capture",
        providerPaymentId: id,
        amountCapturable: intent.amount_capturable,
      };
    case "requires_action": {
      const url = intent.next_action?.redirect_to_url?.url;
      if (url)
        return {
          status: "requires_action",
          providerPaymentId: id,
          nextAction: { type: "redirect", redirect_url: url },
        };
      // Only Stripe.js could finish this kind of action (use_stripe_sdk): a server-side confirm needs a return_url.
      return {
        status: "failed",
        providerPaymentId: id,
        failure: {
          code: "authentication_failed",
          message: "The card requires 3-D Secure; confirm with a return_url.",
        },
      };
    }
    case "processing":
      return { status: "processing", providerPaymentId: id };
    case "canceled":
      return { status: "canceled", providerPaymentId: id };
    case "requires_payment_method": {
      const error = intent.last_payment_error;
      return {
        status: "failed",
        providerPaymentId: id,
        failure: error ? stripeFailure(error.code, error.decline_code) : failure("card_declined"),
      };
    }
    default:
      // requires_confirmation: a confirm: true request that Stripe did not confirm.
      return { status: "failed", providerPaymentId: id, failure: failure("provider_error") };
  }
}

/** A Refund's status: pending and requires_action are not final yet. */
export function refundStatus(refund: Pick<Stripe.Refund, "status">): "succeeded" | "pending" | "failed" {
  return refund.status === "succeeded"
    ? "succeeded"
    : refund.status === "pending" || refund.status === "requires_action"
      ? "pending"
      : "failed";
}
