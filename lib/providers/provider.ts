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

/** A provider notification as it arrived: raw body (signatures cover the exact bytes), headers, peer address. */
export interface WebhookRequest {
  rawBody: string;
  headers: Headers;
  /** The client address as decided by the trusted-proxy setting (YooKassa is authenticated by address). */
  clientIp: string;
}

/** A verified notification, in provider-neutral terms. */
export interface ProviderNotification {
  /** Unique per provider: a duplicate delivery is acknowledged and not applied twice. */
  eventId: string;
  /** The provider's own event type, e.g. payment_intent.succeeded. */
  type: string;
  /** Our payment id when the provider echoes it back (metadata); else found by providerPaymentId. */
  paymentId?: string;
  providerPaymentId?: string;
  /** What the notification says happened to the payment; undefined for types the service does not act on. */
  outcome?: ProviderOutcome;
  /** Set for refund notifications. */
  refund?: { refundId?: string; providerRefundId?: string; status: "succeeded" | "failed" };
  /** When the provider says it happened; orders events so an older one never overrides a newer one. */
  occurredAt: Date;
}

export type WebhookRejectionReason = "signature" | "stale" | "ip" | "malformed";

/** The notification is not authentic (or not parseable): answer 400 and store nothing. */
export class WebhookRejected extends Error {
  override name = "WebhookRejected";
  constructor(
    readonly reason: WebhookRejectionReason,
    message: string,
  ) {
    super(message);
  }
}

/** Implemented by providers that send notifications. */
export interface WebhookVerifier {
  parseWebhook(request: WebhookRequest): Promise<ProviderNotification>;
}
