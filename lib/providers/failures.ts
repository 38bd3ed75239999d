import type { Failure } from "./provider.ts";

/**
 * The failure codes the API reports. Providers have dozens of decline reasons; clients need the few they can act on
 * (ask for another card, top up, retry authentication), so every adapter maps onto these.
 */
export type FailureCode =
  | "card_declined"
  | "insufficient_funds"
  | "expired_card"
  | "authentication_failed"
  | "authorization_expired"
  | "provider_error";

// Our own wording: provider messages can carry details (issuer names, internal ids) that clients should not see.
const MESSAGES: Record<FailureCode, string> = {
  card_declined: "The card was declined.",
  insufficient_funds: "The card has insufficient funds.",
  expired_card: "The card has expired.",
  authentication_failed: "3-D Secure authentication failed.",
  authorization_expired: "The authorization expired before it was captured.",
  provider_error: "The payment provider could not process the payment.",
};

export function failure(code: FailureCode): Failure {
  return { code, message: MESSAGES[code] };
}
