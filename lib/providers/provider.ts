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
  /**
   * A 54-FZ fiscal receipt, passed through unchanged to providers that register receipts (YooKassa). Not part of
   * the public API yet; callers that build ProviderPayment themselves may set it.
   */
  receipt?: Record<string, unknown>;
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

/**
 * The provider refused the request itself (4xx: bad parameters, credentials, a state it does not allow). Definite:
 * nothing happened. Not a sign of an unhealthy provider, so it is neither retried nor counted by the circuit breaker.
 */
export class ProviderRequestRejected extends ProviderError {
  override name = "ProviderRequestRejected";
  constructor(provider: ProviderName, message: string) {
    super(provider, message, true);
  }
}

/** How a provider looks from here: "down" while its circuit is open, "degraded" while it is being probed. */
export type ProviderHealth = "ok" | "degraded" | "down";

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
  /** The provider's current view of a refund made with this key (reconciliation of pending refunds). */
  retrieveRefund?(
    payment: ProviderPayment,
    refund: ProviderRefund,
    idempotencyKey: string,
  ): Promise<"succeeded" | "pending" | "failed">;
  /** Present on providers that send notifications (see WebhookVerifier). */
  parseWebhook?(request: WebhookRequest): Promise<ProviderNotification>;
  /** The state of the provider's circuit breaker, when it has one. */
  health?(): ProviderHealth;
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

/**
 * Implemented by providers that send notifications. `parseWebhook` throws WebhookRejected for a notification that
 * is not authentic (answer 400, store nothing) and ProviderError when it could not be checked right now (YooKassa's
 * re-fetch failed: answer 5xx so the provider delivers it again).
 */
export interface WebhookVerifier {
  parseWebhook(request: WebhookRequest): Promise<ProviderNotification>;
}

export function isWebhookVerifier(provider: PaymentProvider): provider is PaymentProvider & WebhookVerifier {
  return typeof provider.parseWebhook === "function";
}
