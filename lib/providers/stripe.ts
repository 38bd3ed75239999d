import type Stripe from "stripe";
import { CURRENCY_EXPONENTS } from "../payments/money.ts";
import {
  type PaymentProvider,
  ProviderError,
  type ProviderOutcome,
  type ProviderPayment,
  type ProviderRefund,
  ProviderRequestRejected,
} from "./provider.ts";
import { intentOutcome, refundStatus, stripeFailure } from "./stripe-mapping.ts";
import { parseStripeWebhook } from "./stripe-webhook.ts";

export interface StripeOptions {
  secretKey: string;
  /** Signing secret of the webhook endpoint (whsec_…); without it Stripe notifications are not accepted. */
  webhookSecret?: string;
  /** Where the API is, e.g. a local stand-in in tests; default https://api.stripe.com. */
  apiBase?: string;
  timeoutMs: number;
}

/** The shape of the errors the stripe package throws, as far as the mapping reads it. */
interface StripeErrorLike {
  type?: string;
  rawType?: string;
  statusCode?: number;
  code?: string;
  decline_code?: string;
  payment_intent?: Stripe.PaymentIntent;
  detail?: { code?: string } | string;
  message?: string;
}

/**
 * Stripe PaymentIntents through the official package, loaded on first use so a function that never talks to
 * Stripe does not pay for parsing it at start-up. Every request carries an Idempotency-Key derived from our ids;
 * metadata.payment_id links Stripe's objects back to ours.
 */
export function stripeProvider(options: StripeOptions): PaymentProvider {
  let client: Promise<Stripe> | undefined;
  const stripe = () =>
    (client ??= import("stripe").then(
      ({ default: StripeClient }) => new StripeClient(options.secretKey, clientConfig(options)),
    ));

  /** Runs one request; a decline comes back as a failed outcome, anything else unusual as a ProviderError. */
  async function request<T>(call: (s: Stripe) => Promise<T>): Promise<T> {
    const s = await stripe();
    try {
      return await call(s);
    } catch (error) {
      // Our own refusals (bad amount, missing id) are raised before anything is sent.
      if (error instanceof ProviderError) throw error;
      throw toProviderError(error);
    }
  }

  async function createIntent(payment: ProviderPayment, key: string): Promise<ProviderOutcome> {
    try {
      const intent = await request((s) =>
        s.paymentIntents.create(createParams(payment), { idempotencyKey: key }),
      );
      return intentOutcome(intent);
    } catch (error) {
      const decline = declineOf(error);
      if (decline) return decline;
      throw error;
    }
  }

  function createRefund(
    payment: ProviderPayment,
    refund: ProviderRefund,
    key: string,
  ): Promise<Stripe.Refund> {
    return request((s) =>
      s.refunds.create(
        {
          payment_intent: intentId(payment),
          amount: stripeAmount(refund.amount, payment),
          metadata: { refund_id: refund.refundId, payment_id: payment.paymentId },
        },
        { idempotencyKey: key },
      ),
    );
  }

  const provider: PaymentProvider = {
    name: "stripe",
    authorize: (payment, key) => createIntent(payment, key),
    async capture(payment, amount, key) {
      const id = intentId(payment);
      try {
        const intent = await request((s) =>
          s.paymentIntents.capture(
            id,
            { amount_to_capture: stripeAmount(amount, payment) },
            { idempotencyKey: key },
          ),
        );
        return intentOutcome(intent);
      } catch (error) {
        const decline = declineOf(error);
        if (decline) return decline;
        throw error;
      }
    },
    async cancel(payment, key) {
      // Nothing was ever created at Stripe: there is nothing to release.
      if (!payment.providerPaymentId) return { status: "canceled" };
      const intent = await request((s) =>
        s.paymentIntents.cancel(intentId(payment), undefined, { idempotencyKey: key }),
      );
      return intentOutcome(intent);
    },
    async refund(payment, refund, key) {
      try {
        return refundStatus(await createRefund(payment, refund, key));
      } catch (error) {
        // Stripe refuses a refund it cannot make (402, or 400 for a charge already refunded): a failed refund.
        if (error instanceof ProviderRequestRejected) return "failed";
        throw error;
      }
    },
    async retrieve(payment, key) {
      if (payment.providerPaymentId) {
        const id = payment.providerPaymentId;
        return intentOutcome(await request((s) => s.paymentIntents.retrieve(id)));
      }
      // The create's answer was lost, so we never learned the PaymentIntent's id. Replaying the create under the
      // same Idempotency-Key returns Stripe's stored answer for it (or creates it now if it never arrived: Stripe
      // keeps keys for at least 24 hours, far longer than reconciliation waits); then read its current state.
      const replayed = await createIntent(payment, key);
      if (!replayed.providerPaymentId || replayed.status === "failed") return replayed;
      const id = replayed.providerPaymentId;
      return intentOutcome(await request((s) => s.paymentIntents.retrieve(id)));
    },
    async retrieveRefund(payment, refund, key) {
      // The same replay: Stripe's stored answer names the refund, whose current status is then read.
      let created: Stripe.Refund;
      try {
        created = await createRefund(payment, refund, key);
      } catch (error) {
        if (error instanceof ProviderRequestRejected) return "failed";
        throw error;
      }
      if (refundStatus(created) !== "pending") return refundStatus(created);
      return refundStatus(await request((s) => s.refunds.retrieve(created.id)));
    },
  };
  const secret = options.webhookSecret;
  if (secret) provider.parseWebhook = async (request) => parseStripeWebhook(secret, request);
  return provider;
}

function clientConfig(options: StripeOptions): Stripe.StripeConfig {
  const base = options.apiBase ? new URL(options.apiBase) : undefined;
  const protocol = base?.protocol === "http:" ? "http" : "https";
  return {
    // The resilience layer retries, with the same idempotency key and with the circuit breaker watching.
    maxNetworkRetries: 0,
    timeout: options.timeoutMs,
    telemetry: false,
    ...(base ? { host: base.hostname, port: base.port || (protocol === "http" ? 80 : 443), protocol } : {}),
  };
}

function createParams(payment: ProviderPayment): Stripe.PaymentIntentCreateParams {
  return {
    amount: stripeAmount(payment.amount, payment),
    currency: payment.currency.toLowerCase(),
    payment_method: payment.paymentMethod,
    confirm: true,
    capture_method: payment.captureMethod === "manual" ? "manual" : "automatic",
    metadata: { payment_id: payment.paymentId, merchant_id: payment.merchantId },
    ...(payment.description ? { description: payment.description.slice(0, 1000) } : {}),
    // With a return_url the customer can be sent to 3-D Secure and back; without one, only payment methods that
    // need no redirect are allowed.
    ...(payment.returnUrl
      ? { return_url: payment.returnUrl }
      : { automatic_payment_methods: { enabled: true, allow_redirects: "never" as const } }),
  };
}

/**
 * Stripe takes amounts in the currency's smallest unit, as we keep them, for every currency we support: the
 * conversion is the identity, except that Stripe requires three-decimal currencies (KWD) to end in 0.
 */
function stripeAmount(amount: number, payment: ProviderPayment): number {
  if (CURRENCY_EXPONENTS[payment.currency] === 3 && amount % 10 !== 0) {
    throw new ProviderRequestRejected(
      "stripe",
      `${payment.currency} amounts must be a multiple of 10 at Stripe`,
    );
  }
  return amount;
}

function intentId(payment: ProviderPayment): string {
  if (!payment.providerPaymentId)
    throw new ProviderRequestRejected("stripe", "the payment has no PaymentIntent");
  return payment.providerPaymentId;
}

/** A decline (402, or an authentication failure reported with the PaymentIntent) as a failed outcome. */
function declineOf(error: unknown): ProviderOutcome | undefined {
  const e = (error instanceof ProviderError ? error.cause : error) as StripeErrorLike | undefined;
  if (!e) return undefined;
  const intent = e.payment_intent;
  if (e.rawType === "card_error" || e.statusCode === 402) {
    return {
      status: "failed",
      providerPaymentId: intent?.id,
      failure: stripeFailure(e.code, e.decline_code),
    };
  }
  if (e.statusCode === 400 && intent?.last_payment_error) {
    return { status: "failed", providerPaymentId: intent.id, failure: stripeFailure(e.code, e.decline_code) };
  }
  return undefined;
}

/**
 * What a failed request means for our payment. Definite (Stripe did not act): a 4xx, or a connection that was
 * refused before anything was sent. Unknown: 5xx, 409 (the same key is still being processed), timeouts and
 * connections that broke after the request went out.
 */
function toProviderError(error: unknown): ProviderError {
  const e = error as StripeErrorLike;
  const status = e?.statusCode;
  const message = `stripe: ${e?.message ?? String(error)}`;
  let mapped: ProviderError;
  if (e?.type === "StripeConnectionError" || status === undefined) {
    const code = typeof e?.detail === "object" ? e.detail?.code : undefined;
    mapped = new ProviderError("stripe", message, code === "ECONNREFUSED");
  } else if (status === 429) {
    mapped = new ProviderError("stripe", message, true);
  } else if (status === 409 || status >= 500) {
    mapped = new ProviderError("stripe", message, false);
  } else {
    mapped = new ProviderRequestRejected("stripe", message);
  }
  return Object.assign(mapped, { cause: error });
}
