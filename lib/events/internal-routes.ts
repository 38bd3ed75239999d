import type { Hono, MiddlewareHandler } from "hono";
import * as v from "valibot";
import { Limit } from "../http/schemas.ts";
import { parseWith } from "../http/validate.ts";
import type { ServiceContext } from "../payments/context.ts";
import { listRecentEvents } from "./outbox-store.ts";
import { sweepPendingNotifications } from "./receive-notification.ts";

/**
 * Cluster-internal endpoints of the outbox, served by the health function. They carry no JWT and no shared
 * header: they are reachable only inside the cluster (the public HTTPRoute does not route /internal/*, and the
 * NetworkPolicy admits only Knative's data path and Prometheus). What they do is safe to trigger anyway: a drain
 * only does early what the dispatcher's timer would do, and the listing shows no event data.
 */
export const OUTBOX_ROUTES = [
  { method: "POST", path: "/internal/outbox/drain" },
  { method: "GET", path: "/internal/outbox" },
];

const ListQuery = v.object({ limit: v.optional(Limit, "20") });

export function mountOutboxRoutes(app: Hono, service: ServiceContext): void {
  // The Knative PingSource's trigger (every minute): apply notifications kept for a payment that has appeared
  // since, then send what is due. The PingSource's CloudEvent body carries nothing needed here.
  app.post("/internal/outbox/drain", label("/internal/outbox/drain"), async (c) => {
    const notifications = await sweepPendingNotifications(service);
    const outbox = service.outbox ? await service.outbox.drain() : { skipped: "no K_SINK configured" };
    return c.json({ notifications, outbox });
  });

  // Without a sink (the embedded default) events stay in the outbox; this shows what was announced.
  app.get("/internal/outbox", label("/internal/outbox"), async (c) => {
    const { limit } = parseWith(ListQuery, c.req.query(), "query");
    return c.json({ object: "list", data: await listRecentEvents(service.db, limit) });
  });
}

function label(route: string): MiddlewareHandler {
  return async (c, next) => {
    c.set("route" as never, route as never);
    c.set("fn" as never, "health" as never);
    await next();
  };
}
