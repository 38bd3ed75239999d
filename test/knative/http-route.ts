// Which rule of a Gateway API HTTPRoute a request matches, following the spec's matching semantics:
// a rule matches when any of its matches does; a match needs its method and its path to match
// (no path = PathPrefix "/"). PathPrefix matches whole path elements ("/v1/orders" matches "/v1/orders" and
// "/v1/orders/x" but not "/v1/ordersx"); RegularExpression must match the whole path, as Envoy-based
// implementations do.
import { arrAt, isObj, type Obj, strAt } from "./manifests-lib.ts";

export interface RouteTarget {
  rule: number;
  /** Host the request is rewritten to (URLRewrite hostname), if any. */
  rewriteHost?: string;
  backends: string[];
}

export function pathMatches(type: string, value: string, requestPath: string): boolean {
  switch (type) {
    case "Exact":
      return requestPath === value;
    case "PathPrefix": {
      const prefix = value.length > 1 ? value.replace(/\/+$/, "") : value;
      return prefix === "/" || requestPath === prefix || requestPath.startsWith(`${prefix}/`);
    }
    case "RegularExpression":
      return new RegExp(`^(?:${value})$`).test(requestPath);
    default:
      throw new Error(`unknown path match type ${type}`);
  }
}

export function matchMatches(match: unknown, method: string, requestPath: string): boolean {
  if (!isObj(match)) return false;
  const wantMethod = strAt(match, "method");
  if (wantMethod !== undefined && wantMethod !== method) return false;
  // Header and query matches would make a request's routing depend on more than method and path.
  if (arrAt(match, "headers").length > 0 || arrAt(match, "queryParams").length > 0) return false;
  const type = strAt(match, "path.type") ?? "PathPrefix";
  const value = strAt(match, "path.value") ?? "/";
  return pathMatches(type, value, requestPath);
}

/** Every rule of the route that matches the request (a well-formed route has at most one). */
export function matchingRules(route: Obj, host: string, method: string, requestPath: string): RouteTarget[] {
  const hostnames = arrAt(route, "spec.hostnames").map(String);
  if (hostnames.length > 0 && !hostnames.includes(host)) return [];
  const targets: RouteTarget[] = [];
  arrAt(route, "spec.rules").forEach((rule, index) => {
    const matches = arrAt(rule, "matches");
    const matched =
      matches.length === 0
        ? pathMatches("PathPrefix", "/", requestPath)
        : matches.some((m) => matchMatches(m, method, requestPath));
    if (!matched) return;
    const rewrite = arrAt(rule, "filters").find((f) => strAt(f, "type") === "URLRewrite");
    targets.push({
      rule: index,
      rewriteHost: strAt(rewrite, "urlRewrite.hostname"),
      backends: arrAt(rule, "backendRefs").map(
        (b) => `${strAt(b, "namespace") ?? ""}/${strAt(b, "name") ?? ""}:${String(isObj(b) ? b.port : "")}`,
      ),
    });
  });
  return targets;
}

/** Turns a Hono-style route path into a concrete request path: `/v1/payments/:id/confirm` -> `/v1/payments/x_123/confirm`. */
export function concretePath(honoPath: string): string {
  return honoPath
    .split("/")
    .map((segment) =>
      segment.startsWith(":")
        ? `${segment.slice(1).replace(/[{}?].*$/, "")}_123`
        : segment === "*"
          ? "any"
          : segment,
    )
    .join("/");
}
