// The HTTPRoute matcher the manifest tests rely on: if it were wrong, the routing checks would prove nothing.
import { describe, expect, it } from "vitest";
import { concretePath, matchingRules, pathMatches } from "./http-route.ts";

describe("pathMatches", () => {
  it("matches Exact paths exactly", () => {
    expect(pathMatches("Exact", "/v1/orders", "/v1/orders")).toBe(true);
    expect(pathMatches("Exact", "/v1/orders", "/v1/orders/")).toBe(false);
    expect(pathMatches("Exact", "/v1/orders", "/v1/orders/ord_1")).toBe(false);
  });

  it("matches PathPrefix on whole path elements", () => {
    expect(pathMatches("PathPrefix", "/v1/orders", "/v1/orders")).toBe(true);
    expect(pathMatches("PathPrefix", "/v1/orders", "/v1/orders/ord_1/cancel")).toBe(true);
    expect(pathMatches("PathPrefix", "/v1/orders/", "/v1/orders/ord_1")).toBe(true);
    expect(pathMatches("PathPrefix", "/v1/orders", "/v1/ordersx")).toBe(false);
    expect(pathMatches("PathPrefix", "/", "/anything")).toBe(true);
  });

  it("matches RegularExpression against the whole path", () => {
    expect(pathMatches("RegularExpression", "/v1/payments/[^/]+/confirm", "/v1/payments/pay_1/confirm")).toBe(
      true,
    );
    expect(
      pathMatches("RegularExpression", "/v1/payments/[^/]+/confirm", "/x/v1/payments/pay_1/confirm"),
    ).toBe(false);
    expect(pathMatches("RegularExpression", "/v1/payments/[^/]+/confirm", "/v1/payments/a/b/confirm")).toBe(
      false,
    );
    expect(pathMatches("RegularExpression", "/v1/(a|b)", "/v1/b")).toBe(true);
  });

  it("rejects unknown match types", () => {
    expect(() => pathMatches("Prefix", "/", "/")).toThrow(/unknown path match type/);
  });
});

describe("matchingRules", () => {
  const route = {
    spec: {
      hostnames: ["api.example.com"],
      rules: [
        {
          matches: [{ method: "POST", path: { type: "Exact", value: "/v1/orders" } }],
          filters: [{ type: "URLRewrite", urlRewrite: { hostname: "create.ns.svc.cluster.local" } }],
          backendRefs: [{ namespace: "gw", name: "local", port: 80 }],
        },
        {
          matches: [{ method: "GET", path: { type: "PathPrefix", value: "/v1/orders" } }],
          filters: [{ type: "URLRewrite", urlRewrite: { hostname: "status.ns.svc.cluster.local" } }],
        },
        { matches: [{ path: { type: "PathPrefix", value: "/v1" }, headers: [{ name: "x", value: "y" }] }] },
      ],
    },
  };

  it("needs the method, the path and the host to match", () => {
    expect(matchingRules(route, "api.example.com", "POST", "/v1/orders")).toEqual([
      { rule: 0, rewriteHost: "create.ns.svc.cluster.local", backends: ["gw/local:80"] },
    ]);
    expect(
      matchingRules(route, "api.example.com", "GET", "/v1/orders/ord_1").map((t) => t.rewriteHost),
    ).toEqual(["status.ns.svc.cluster.local"]);
    expect(matchingRules(route, "api.example.com", "DELETE", "/v1/orders")).toEqual([]);
    expect(matchingRules(route, "evil.example.com", "POST", "/v1/orders")).toEqual([]);
  });
});

describe("concretePath", () => {
  it("fills Hono parameters with sample ids", () => {
    expect(concretePath("/v1/payments/:id/confirm")).toBe("/v1/payments/id_123/confirm");
    expect(concretePath("/v1/webhooks/:provider{[a-z]+}")).toBe("/v1/webhooks/provider_123");
    expect(concretePath("/")).toBe("/");
  });
});
