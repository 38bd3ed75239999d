import type Stripe from "stripe";
import * as v from "valibot";
import { DEFAULT_TOLERANCE_SECONDS, verifySignature } from "./hmac-signature.ts";
import { type ProviderNotification, WebhookRejected, type WebhookRequest } from "./provider.ts";
import { intentOutcome, refundStatus } from "./stripe-mapping.ts";

// The envelope only; the object inside is read per event type.
const StripeEvent = v.object({
  id: v.pipe(v.string(), v.startsWith("evt_")),
  type: v.string(),
  created: v.pipe(v.number(), v.integer()),
  data: v.object({ object: v.looseObject({ id: v.string() }) }),
});

const INTENT_EVENTS = new Set([
  "payment_intent.succeeded",
  "payment_intent.payment_failed",
  "payment_intent.canceled",
  "payment_intent.amount_capturable_updated",
  "payment_intent.processing",
  "payment_intent.requires_action",
]);
const REFUND_EVENTS = new Set(["refund.created", "refund.updated", "refund.failed", "charge.refund.updated"]);

/**
 * Verifies a Stripe notification (Stripe-Signature: t=…,v1=…, several v1 during secret rotation, 300 s tolerance;
 * the same scheme stripe.webhooks.constructEvent checks, without loading the package) and reads it in
 * provider-neutral terms. Types the service does not act on come back without outcome or refund.
 */
export function parseStripeWebhook(
  secret: string,
  request: WebhookRequest,
  now?: number,
): ProviderNotification {
  verifySignature(
    secret,
    request.rawBody,
    request.headers.get("stripe-signature"),
    DEFAULT_TOLERANCE_SECONDS,
    now,
  );
  let json: unknown;
  try {
    json = JSON.parse(request.rawBody);
  } catch {
    throw new WebhookRejected("malformed", "body is not JSON");
  }
  const parsed = v.safeParse(StripeEvent, json);
  if (!parsed.success) throw new WebhookRejected("malformed", "not a Stripe event");
  const event = parsed.output;
  const base = { eventId: event.id, type: event.type, occurredAt: new Date(event.created * 1000) };

  if (INTENT_EVENTS.has(event.type)) {
    const intent = event.data.object as unknown as Stripe.PaymentIntent;
    const outcome = intentOutcome(intent);
    return {
      ...base,
      paymentId: intent.metadata?.payment_id,
      providerPaymentId: intent.id,
      // A requires_action event without a redirect is Stripe.js's business, not a failure to record.
      outcome:
        event.type === "payment_intent.requires_action" && outcome.status !== "requires_action"
          ? undefined
          : outcome,
    };
  }
  if (REFUND_EVENTS.has(event.type)) {
    const refund = event.data.object as unknown as Stripe.Refund;
    const status = refundStatus(refund);
    return {
      ...base,
      paymentId: refund.metadata?.payment_id,
      providerPaymentId:
        typeof refund.payment_intent === "string" ? refund.payment_intent : refund.payment_intent?.id,
      ...(status === "pending"
        ? {}
        : { refund: { refundId: refund.metadata?.refund_id, providerRefundId: refund.id, status } }),
    };
  }
  if (event.type === "charge.refunded") {
    // Older API versions embed the charge's refunds, newest first; newer ones send refund.* events as well.
    const charge = event.data.object as unknown as Stripe.Charge;
    const latest = charge.refunds?.data?.[0];
    const status = latest ? refundStatus(latest) : "pending";
    return {
      ...base,
      paymentId: latest?.metadata?.payment_id ?? charge.metadata?.payment_id,
      providerPaymentId:
        typeof charge.payment_intent === "string" ? charge.payment_intent : charge.payment_intent?.id,
      ...(latest && status !== "pending"
        ? { refund: { refundId: latest.metadata?.refund_id, providerRefundId: latest.id, status } }
        : {}),
    };
  }
  return base;
}
