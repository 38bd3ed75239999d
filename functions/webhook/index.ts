import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { parseCloudEvent } from "../../lib/events/cloudevent-in.ts";
import { findWebhookProvider, handleNotification } from "../../lib/events/inbound.ts";
import type { DeliveryMeta } from "../../lib/events/provider-events.ts";
import { MAX_BODY_BYTES } from "../../lib/http/app.ts";
import { clientIp, parseList } from "../../lib/http/client-ip.ts";
import { ApiError } from "../../lib/http/errors.ts";
import type { FunctionDefinition } from "../../lib/http/route.ts";
import { parseWith } from "../../lib/http/validate.ts";
import {
  MAX_EVENT_BYTES,
  NotificationEventData,
  PROVIDER_NOTIFICATION_TYPE,
  type WebhookAck,
} from "./schema.ts";
import { mountThreeDSecure } from "./three-d-secure.ts";

/**
 * webhook: provider notifications in, as plain HTTP from the provider (POST /v1/webhooks/{provider}) and as
 * CloudEvents from a Knative Broker (POST /, format in schema.ts), plus the sandbox's hosted 3-D Secure page.
 * Notifications carry no JWT — providers do not have ours — so these routes are mounted outside the API's auth
 * and authenticated by the provider's own check (signature, or address for YooKassa) before anything is stored.
 */
export const webhookFunction: FunctionDefinition = {
  name: "webhook",
  routes: [],
  extraRoutes: [
    { method: "POST", path: "/v1/webhooks/:provider" },
    { method: "POST", path: "/" },
    { method: "GET", path: "/sandbox/3ds/:id" },
    { method: "POST", path: "/sandbox/3ds/:id" },
  ],
  mount(app, service) {
    const trustedProxies = parseList(service.config.trustedProxies);
    const meta = (c: Context, traceparent?: string): DeliveryMeta => ({
      requestId: c.get("requestId" as never) as string,
      traceparent: (c.get("traceparent" as never) as string | undefined) ?? traceparent,
    });

    // Providers read only the status; 2xx means "stored, do not send it again".
    app.post(
      "/v1/webhooks/:provider",
      routeLabel("/v1/webhooks/:provider"),
      async (c, next) => {
        if (!findWebhookProvider(service, c.req.param("provider") ?? "")) {
          throw new ApiError("not_found", "No such provider accepts notifications here.");
        }
        await next();
      },
      limitBody(MAX_BODY_BYTES),
      async (c) => {
        const name = findWebhookProvider(service, c.req.param("provider") ?? "");
        if (!name) throw new ApiError("not_found", "No such provider accepts notifications here.");
        const request = {
          rawBody: await c.req.text(),
          headers: c.req.raw.headers,
          clientIp: clientIp(c, trustedProxies),
        };
        const ack = await handleNotification(service, name, request, meta(c));
        return c.json(
          { received: true, event_id: ack.eventId, result: ack.result } satisfies WebhookAck,
          200,
        );
      },
    );

    // Knative delivery semantics: 2xx handled (or duplicate), 4xx never acceptable (the broker dead-letters it),
    // 5xx retry later. A 2xx must have an empty body: a broker reads a non-empty one as a reply event.
    app.post("/", routeLabel("/"), limitBody(MAX_EVENT_BYTES), async (c) => {
      const event = parseCloudEvent(c.req.raw.headers, await c.req.text());
      if (event.type !== PROVIDER_NOTIFICATION_TYPE) {
        throw new ApiError("validation_failed", `CloudEvents of type ${event.type} are not handled here.`, {
          errors: [{ path: "type", message: `must be ${PROVIDER_NOTIFICATION_TYPE}` }],
        });
      }
      const data = parseWith(NotificationEventData, event.data, "data");
      const extension = typeof event.provider === "string" ? event.provider : undefined;
      if (extension !== undefined && data.provider !== undefined && extension !== data.provider) {
        throw new ApiError("validation_failed", "The provider extension and data.provider disagree.", {
          errors: [{ path: "provider", message: "must equal data.provider" }],
        });
      }
      const requested = extension ?? data.provider;
      // Not 404: a broker retries 404s, and an unknown provider will never become acceptable.
      const name = requested ? findWebhookProvider(service, requested) : undefined;
      if (!name) {
        throw new ApiError("validation_failed", "The event names no provider that accepts notifications.", {
          errors: [{ path: "provider", message: "must name a configured provider" }],
        });
      }
      const request = {
        rawBody: data.body,
        headers: toHeaders(data.headers),
        clientIp: data.client_ip ?? clientIp(c, trustedProxies),
      };
      const traceparent = typeof event.traceparent === "string" ? event.traceparent : undefined;
      await handleNotification(service, name, request, meta(c, traceparent));
      return c.body(null, 204);
    });

    mountThreeDSecure(app, service);
  },
};

/** Names the route for the request log and metrics (the app labels unmatched requests otherwise). */
function routeLabel(route: string): MiddlewareHandler {
  return async (c, next) => {
    c.set("route" as never, route as never);
    c.set("fn" as never, "webhook" as never);
    await next();
  };
}

function limitBody(maxSize: number): MiddlewareHandler {
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new ApiError("payload_too_large", `Request bodies are limited to ${maxSize} bytes.`);
    },
  });
}

function toHeaders(record: Record<string, string>): Headers {
  try {
    return new Headers(record);
  } catch {
    throw new ApiError("validation_failed", "data.headers holds a name or value HTTP does not allow.", {
      errors: [{ path: "data.headers", message: "must be valid HTTP header names and values" }],
    });
  }
}
