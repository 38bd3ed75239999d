import type { Currency } from "../payments/money.ts";

export type ProviderName = "sandbox" | "stripe" | "yookassa";
export const PROVIDER_NAMES: readonly ProviderName[] = ["sandbox", "stripe", "yookassa"];

export interface Failure {
  code: string;
  message: string;
}

export interface NextAction {
  type: "redirect";
  redirect_url: string;
}

/** What a provider says about a payment after a call, or when asked later (retrieve). */
export type ProviderOutcome =
  | { status: "succeeded"; providerPaymentId: string; amountCaptured: number }
  | { status: "requires_capture"; providerPaymentId: string; amountCapturable: number }
  | { status: "requires_action"; providerPaymentId: string; nextAction: NextAction }
  | { status: "processing"; providerPaymentId?: string }
  | { status: "failed"; providerPaymentId?: string; failure: Failure }
  | { status: "canceled"; providerPaymentId?: string };

/** The payment as the provider needs to see it. Money is in minor units; adapters convert. */
export interface ProviderPayment {
  paymentId: string;
  merchantId: string;
  amount: number;
  currency: Currency;
  paymentMethod: string;
  captureMethod: "automatic" | "manual";
  providerPaymentId?: string;
  returnUrl?: string;
  description?: string;
}

export interface ProviderRefund {
  refundId: string;
  amount: number;
}

/**
 * A provider call's failure. `definite` means the provider did not act (safe to leave the payment where it was);
 * otherwise the result is unknown (it may have charged) and only retrieve can tell.
 */
export class ProviderError extends Error {
  override name = "ProviderError";
  constructor(
    readonly provider: ProviderName,
    message: string,
    readonly definite: boolean,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export interface PaymentProvider {
  readonly name: ProviderName;
  /** Charges (automatic capture) or authorizes (manual capture). */
  authorize(payment: ProviderPayment, idempotencyKey: string): Promise<ProviderOutcome>;
  capture(payment: ProviderPayment, amount: number, idempotencyKey: string): Promise<ProviderOutcome>;
  cancel(payment: ProviderPayment, idempotencyKey: string): Promise<ProviderOutcome>;
  refund(
    payment: ProviderPayment,
    refund: ProviderRefund,
    idempotencyKey: string,
  ): Promise<"succeeded" | "pending" | "failed">;
  /** The provider's current view of a payment, for reconciliation of unknown outcomes. */
  retrieve(payment: ProviderPayment, idempotencyKey: string): Promise<ProviderOutcome>;
}

/** Provider idempotency keys derive from our ids, so a retry of the same attempt never charges twice. */
export function providerIdempotencyKey(
  paymentId: string,
  operation: string,
  attempt: number | string,
): string {
  return `${paymentId}:${operation}:${attempt}`;
}
