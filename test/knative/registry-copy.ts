// TEMPORARY stand-in for functions/registry.ts while it does not exist yet.
export const functionDefinitions: { name: string; routes: { method: string; path: string }[] }[] = [
  { name: "create", routes: [{ method: "POST", path: "/v1/orders" }, { method: "POST", path: "/v1/payments" }] },
  { name: "confirm", routes: [{ method: "POST", path: "/v1/payments/:id/confirm" }, { method: "POST", path: "/v1/payments/:id/capture" }] },
  { name: "cancel", routes: [{ method: "POST", path: "/v1/payments/:id/cancel" }, { method: "POST", path: "/v1/orders/:id/cancel" }, { method: "POST", path: "/v1/refunds" }] },
  { name: "status", routes: [{ method: "GET", path: "/v1/orders" }, { method: "GET", path: "/v1/orders/:id" }, { method: "GET", path: "/v1/payments" }, { method: "GET", path: "/v1/payments/:id" }, { method: "GET", path: "/v1/refunds/:id" }] },
  { name: "webhook", routes: [{ method: "POST", path: "/v1/webhooks/:provider" }, { method: "POST", path: "/" }, { method: "GET", path: "/sandbox/3ds/:id" }, { method: "POST", path: "/sandbox/3ds/:id" }] },
  { name: "health", routes: [{ method: "GET", path: "/health" }, { method: "GET", path: "/ready" }, { method: "POST", path: "/internal/outbox/drain" }, { method: "POST", path: "/internal/reconcile" }, { method: "GET", path: "/openapi.json" }, { method: "GET", path: "/docs" }] },
];
