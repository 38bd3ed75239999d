// The endpoints of the HTTP API contract, by function: what the public HTTPRoute, the Triggers and the
// PingSources are built to reach. The manifest tests check the routing against this list and against what the
// functions actually register (functions/registry.ts), so a route missing on either side shows up.
export interface FunctionRoutes {
  name: string;
  routes: { method: string; path: string }[];
}

export const contractRoutes: FunctionRoutes[] = [
  {
    name: "create",
    routes: [
      { method: "POST", path: "/v1/orders" },
      { method: "POST", path: "/v1/payments" },
    ],
  },
  {
    name: "confirm",
    routes: [
      { method: "POST", path: "/v1/payments/:id/confirm" },
      { method: "POST", path: "/v1/payments/:id/capture" },
    ],
  },
  {
    name: "cancel",
    routes: [
      { method: "POST", path: "/v1/payments/:id/cancel" },
      { method: "POST", path: "/v1/orders/:id/cancel" },
      { method: "POST", path: "/v1/refunds" },
    ],
  },
  {
    name: "status",
    routes: [
      { method: "GET", path: "/v1/orders" },
      { method: "GET", path: "/v1/orders/:id" },
      { method: "GET", path: "/v1/payments" },
      { method: "GET", path: "/v1/payments/:id" },
      { method: "GET", path: "/v1/refunds/:id" },
    ],
  },
  {
    name: "webhook",
    routes: [
      { method: "POST", path: "/v1/webhooks/:provider" },
      // CloudEvents delivered by the broker's Triggers.
      { method: "POST", path: "/" },
      // The sandbox provider's hosted 3-D Secure page.
      { method: "GET", path: "/sandbox/3ds/:id" },
      { method: "POST", path: "/sandbox/3ds/:id" },
    ],
  },
  {
    name: "health",
    routes: [
      { method: "GET", path: "/health" },
      { method: "GET", path: "/ready" },
      // Called by the PingSources.
      { method: "POST", path: "/internal/outbox/drain" },
      { method: "POST", path: "/internal/reconcile" },
      { method: "GET", path: "/openapi.json" },
      { method: "GET", path: "/docs" },
    ],
  },
];
