import { createHash } from "node:crypto";
import { ExponentialBackoff, handleWhen, retry } from "cockatiel";
import * as v from "valibot";
import type { Logger } from "../telemetry/logger.ts";
import { signPayload, verifySignature } from "./hmac-signature.ts";
import {
  type ProviderNotification,
  type ProviderOutcome,
  WebhookRejected,
  type WebhookRequest,
} from "./provider.ts";

/**
 * The sandbox's notification, sent to `POST {PUBLIC_BASE_URL}/v1/webhooks/sandbox` when an asynchronous payment
 * (pm_card_async) finishes:
 *
 *   Content-Type: application/json
 *   Sandbox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with SANDBOX_WEBHOOK_SECRET>
 *
 *   {
 *     "id": "evt_sbx_<32 hex>",        the same on every delivery of one event (deduplicate on it)
 *     "type": "payment.succeeded" | "payment.requires_capture" | "payment.failed",
 *     "created": <unix seconds>,       when the sandbox settled the payment
 *     "data": {
 *       "payment_id": "pay_…",         our id, echoed back
 *       "provider_payment_id": "sbx_…",
 *       "amount": <integer minor units>,
 *       "currency": "USD",
 *       "failure": { "code", "message" }   only on payment.failed
 *     }
 *   }
 *
 * The signature is Stripe's scheme (lib/providers/hmac-signature.ts): the timestamp is signed with the body, a
 * receiver rejects signatures older than 300 s, and each delivery attempt is signed afresh.
 */
export const SANDBOX_SIGNATURE_HEADER = "Sandbox-Signature";
export const SANDBOX_EVENT_TYPES = [
  "payment.succeeded",
  "payment.requires_capture",
  "payment.failed",
] as const;
export type SandboxEventType = (typeof SANDBOX_EVENT_TYPES)[number];

const SandboxEvent = v.object({
  id: v.pipe(v.string(), v.regex(/^evt_sbx_[0-9a-f]{32}$/)),
  type: v.picklist(SANDBOX_EVENT_TYPES),
  created: v.pipe(v.number(), v.integer(), v.minValue(0)),
  data: v.object({
    payment_id: v.pipe(v.string(), v.regex(/^pay_[0-9a-f]{32}$/)),
    provider_payment_id: v.pipe(v.string(), v.minLength(1)),
    amount: v.pipe(v.number(), v.integer(), v.minValue(0)),
    currency: v.pipe(v.string(), v.regex(/^[A-Z]{3}$/)),
    failure: v.optional(v.object({ code: v.string(), message: v.string() })),
  }),
});
export type SandboxEvent = v.InferOutput<typeof SandboxEvent>;

/** The event announcing a settled outcome; its id is derived from payment and type, so a resend dedupes. */
export function sandboxEvent(
  paymentId: string,
  outcome: ProviderOutcome,
  amount: number,
  currency: string,
  at: Date,
): SandboxEvent | undefined {
  const type: SandboxEventType | undefined =
    outcome.status === "succeeded"
      ? "payment.succeeded"
      : outcome.status === "requires_capture"
        ? "payment.requires_capture"
        : outcome.status === "failed"
          ? "payment.failed"
          : undefined;
  if (!type || !outcome.providerPaymentId) return undefined;
  const digest = createHash("sha256").update(`${paymentId}:${type}`).digest("hex").slice(0, 32);
  return {
    id: `evt_sbx_${digest}`,
    type,
    created: Math.floor(at.getTime() / 1000),
    data: {
      payment_id: paymentId,
      provider_payment_id: outcome.providerPaymentId,
      amount,
      currency,
      ...(outcome.status === "failed" ? { failure: outcome.failure } : {}),
    },
  };
}

/** Verifies and parses a sandbox notification (the webhook function calls this through the provider). */
export function parseSandboxWebhook(
  secret: string,
  request: WebhookRequest,
  now?: number,
): ProviderNotification {
  verifySignature(secret, request.rawBody, request.headers.get(SANDBOX_SIGNATURE_HEADER), undefined, now);
  let json: unknown;
  try {
    json = JSON.parse(request.rawBody);
  } catch {
    throw new WebhookRejected("malformed", "body is not JSON");
  }
  const parsed = v.safeParse(SandboxEvent, json);
  if (!parsed.success) throw new WebhookRejected("malformed", "not a sandbox event");
  const event = parsed.output;
  const { data } = event;
  const outcome: ProviderOutcome =
    event.type === "payment.succeeded"
      ? { status: "succeeded", providerPaymentId: data.provider_payment_id, amountCaptured: data.amount }
      : event.type === "payment.requires_capture"
        ? {
            status: "requires_capture",
            providerPaymentId: data.provider_payment_id,
            amountCapturable: data.amount,
          }
        : {
            status: "failed",
            providerPaymentId: data.provider_payment_id,
            failure: data.failure ?? { code: "provider_error", message: "The payment failed." },
          };
  return {
    eventId: event.id,
    type: event.type,
    paymentId: data.payment_id,
    providerPaymentId: data.provider_payment_id,
    outcome,
    occurredAt: new Date(event.created * 1000),
  };
}

export interface DeliveryOptions {
  url: string;
  secret: string;
  /** Deliveries in all, the first included. */
  attempts: number;
  initialDelayMs: number;
  timeoutMs: number;
  log?: Logger;
}

class RetryableDelivery extends Error {}

/**
 * Posts an event the way a provider does: until the receiver answers 2xx, retrying network errors, 429 and 5xx
 * with exponential backoff; a 4xx means the receiver refuses it for good. Resolves true once delivered.
 */
export async function deliverSandboxEvent(event: SandboxEvent, options: DeliveryOptions): Promise<boolean> {
  const body = JSON.stringify(event);
  const policy = retry(
    handleWhen((e) => e instanceof RetryableDelivery),
    {
      maxAttempts: Math.max(0, options.attempts - 1),
      backoff: new ExponentialBackoff({ initialDelay: options.initialDelayMs, maxDelay: 60_000 }),
    },
  );
  try {
    await policy.execute(async ({ attempt }) => {
      let status: number;
      try {
        const response = await fetch(options.url, {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            [SANDBOX_SIGNATURE_HEADER]: signPayload(options.secret, body),
            "User-Agent": "payment-service-sandbox/1",
          },
          body,
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        status = response.status;
        await response.body?.cancel();
      } catch (error) {
        options.log?.warn(
          { event_id: event.id, attempt, err: (error as Error).message },
          "sandbox webhook not delivered",
        );
        throw new RetryableDelivery("network");
      }
      if (status >= 500 || status === 429) {
        options.log?.warn({ event_id: event.id, attempt, status }, "sandbox webhook refused; retrying");
        throw new RetryableDelivery(String(status));
      }
      if (status >= 400) throw new Error(`receiver answered ${status}`);
    });
    return true;
  } catch (error) {
    options.log?.error(
      { event_id: event.id, err: (error as Error).message },
      "sandbox webhook given up; reconciliation will settle the payment",
    );
    return false;
  }
}
