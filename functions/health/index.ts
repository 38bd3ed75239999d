import { Scalar } from "@scalar/hono-api-reference";
import { pruneExpired } from "../../lib/db/retention.ts";
import { mountOutboxRoutes, OUTBOX_ROUTES } from "../../lib/events/internal-routes.ts";
import { sweepPendingNotifications } from "../../lib/events/receive-notification.ts";
import { buildOpenApi } from "../../lib/http/openapi.ts";
import type { FunctionDefinition } from "../../lib/http/route.ts";
import { reconcile } from "../../lib/payments/reconcile.ts";

/**
 * health: liveness and readiness (mounted on every function by the app), plus the API reference. The JSON API
 * routes are listed in the OpenAPI document passed in, so the document always matches what is served.
 */
export function healthFunction(documented: () => FunctionDefinition[]): FunctionDefinition {
  return {
    name: "health",
    routes: [],
    extraRoutes: [
      { method: "GET", path: "/health" },
      { method: "GET", path: "/ready" },
      { method: "GET", path: "/openapi.json" },
      { method: "GET", path: "/docs" },
      ...OUTBOX_ROUTES,
      { method: "POST", path: "/internal/reconcile" },
    ],
    mount(app, service) {
      let spec: ReturnType<typeof buildOpenApi> | undefined;
      app.get("/openapi.json", (c) => {
        spec ??= buildOpenApi(documented(), service.config.publicBaseUrl);
        return c.json(spec);
      });
      app.get("/docs", Scalar({ url: "/openapi.json", pageTitle: "Payment Service API" }));
      mountOutboxRoutes(app, service);
      // The reconciliation PingSource's trigger (cluster-internal like the outbox routes): settle payments left
      // processing by a lost provider answer, apply notifications that waited for them, then delete what is kept
      // only for a while (sent events and decided provider notifications past their retention, expired Idempotency-Key
      // records).
      app.post("/internal/reconcile", async (c) => {
        c.set("route" as never, "/internal/reconcile" as never);
        c.set("fn" as never, "health" as never);
        const payments = await reconcile(service, { source: "health" });
        const notifications = await sweepPendingNotifications(service);
        const pruned = await pruneExpired(service.db, service.config.retention);
        return c.json({ ...payments, notifications, pruned });
      });
    },
  };
}
