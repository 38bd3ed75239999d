import { ApiError, type FieldError } from "../http/errors.ts";
import type { ServiceContext } from "../payments/context.ts";
import {
  isWebhookVerifier,
  PROVIDER_NAMES,
  ProviderError,
  type ProviderName,
  type ProviderNotification,
  WebhookRejected,
  type WebhookRejectionReason,
  type WebhookRequest,
} from "../providers/provider.ts";
import { metrics } from "../telemetry/metrics.ts";
import type { DeliveryMeta } from "./provider-events.ts";
import { type ReceiveResult, receiveNotification } from "./receive-notification.ts";

/** How long a provider or broker should wait before delivering a notification whose payment was not known yet. */
export const PENDING_RETRY_AFTER_SECONDS = 10;

/** The configured provider of that name, if it accepts notifications. */
export function findWebhookProvider(service: ServiceContext, name: string): ProviderName | undefined {
  if (!(PROVIDER_NAMES as readonly string[]).includes(name)) return undefined;
  const provider = service.providers.get(name as ProviderName);
  return provider && isWebhookVerifier(provider) ? provider.name : undefined;
}

/**
 * One delivery of a provider notification, whichever way it came (HTTP from the provider, or a CloudEvent from the
 * broker): authenticate it first with the provider's own check, store nothing unless it passes, then store and
 * apply it. Throws ApiError for the answers that are not 200: 400 (not authentic: never accepted), 503 (not
 * applicable yet, or the provider could not be asked to confirm it: deliver again later).
 */
export async function handleNotification(
  service: ServiceContext,
  name: ProviderName,
  request: WebhookRequest,
  meta: DeliveryMeta,
): Promise<Exclude<ReceiveResult, { result: "pending" }> & { eventId: string }> {
  metrics.webhooksReceived.inc({ provider: name });
  const notification = await verify(service, name, request);
  const outcome = await receiveNotification(service, name, notification, meta);
  if (outcome.result === "pending") {
    throw new ApiError(
      "service_unavailable",
      "The payment this notification refers to is not known yet; it was stored, deliver it again later.",
      { retryAfter: PENDING_RETRY_AFTER_SECONDS },
    );
  }
  return { ...outcome, eventId: notification.eventId };
}

async function verify(
  service: ServiceContext,
  name: ProviderName,
  request: WebhookRequest,
): Promise<ProviderNotification> {
  const provider = service.providers.get(name);
  if (!provider || !isWebhookVerifier(provider)) throw new ApiError("not_found", `No provider ${name}.`);
  try {
    return await provider.parseWebhook(request);
  } catch (error) {
    if (error instanceof WebhookRejected) {
      metrics.webhooksRejected.inc({ provider: name, reason: error.reason });
      throw new ApiError("validation_failed", `The notification was rejected: ${error.message}.`, {
        errors: [rejectedField(error.reason, error.message)],
      });
    }
    if (error instanceof ProviderError) {
      // The provider's check could not run (YooKassa confirms a notification by asking its API): try again later.
      metrics.webhooksFailed.inc({ provider: name });
      throw new ApiError("provider_unavailable", "The notification could not be verified right now.", {
        status: 503,
        retryAfter: error.retryAfterSeconds ?? PENDING_RETRY_AFTER_SECONDS,
      });
    }
    throw error;
  }
}

function rejectedField(reason: WebhookRejectionReason, message: string): FieldError {
  const path = reason === "malformed" ? "body" : reason === "ip" ? "client_ip" : "signature";
  return { path, message };
}
