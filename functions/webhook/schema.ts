import * as v from "valibot";
import { MAX_BODY_BYTES } from "../../lib/http/app.ts";
import { PROVIDER_NAMES } from "../../lib/providers/provider.ts";

/**
 * A provider notification carried as a CloudEvent (from a Knative Broker, through the Triggers):
 *
 *   type             io.payment-service.provider.notification
 *   source           whoever received it from the provider, e.g. /provider-gateway/stripe
 *   id               unique per CloudEvent (duplicates are detected by the provider's own event id inside)
 *   provider         extension: sandbox | stripe | yookassa — what the Triggers filter on
 *   datacontenttype  application/json
 *   data             {
 *                      "body":      the provider's raw payload, byte for byte as received (signatures cover it),
 *                      "headers":   the provider request's headers, at least its signature header,
 *                      "provider":  optional; must equal the extension when both are given,
 *                      "client_ip": optional; the address the notification came from, for providers
 *                                   authenticated by address (YooKassa); else the broker's own address is used
 *                    }
 *
 * Binary and structured content modes are both accepted. The notification is verified exactly as on
 * POST /v1/webhooks/{provider}: the broker is a transport, not a reason to trust what it carries.
 */
export const PROVIDER_NOTIFICATION_TYPE = "io.payment-service.provider.notification";

const ProviderName = v.picklist(PROVIDER_NAMES, `must be one of ${PROVIDER_NAMES.join(", ")}`);

export const NotificationEventData = v.object({
  provider: v.optional(ProviderName),
  body: v.pipe(
    v.string("must be the raw payload as a string"),
    v.maxBytes(MAX_BODY_BYTES, `must be at most ${MAX_BODY_BYTES} bytes`),
  ),
  headers: v.pipe(
    v.record(v.string(), v.string("must be a string")),
    v.check((h) => Object.keys(h).length <= 100, "must have at most 100 entries"),
  ),
  client_ip: v.optional(v.pipe(v.string(), v.maxLength(64))),
});

/** A CloudEvent of this kind may be a bit larger than the raw payload it wraps (JSON escaping, headers). */
export const MAX_EVENT_BYTES = 2 * MAX_BODY_BYTES;

/** The answer to a provider: it only needs the 2xx; the result helps whoever reads the provider's delivery log. */
export const WebhookAck = v.object({
  received: v.literal(true),
  event_id: v.optional(v.string()),
  result: v.picklist(["applied", "ignored", "duplicate"]),
});
export type WebhookAck = v.InferOutput<typeof WebhookAck>;
