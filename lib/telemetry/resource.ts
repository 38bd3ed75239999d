import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { OtelConfig } from "../config/index.ts";

/**
 * Who is sending: the attributes every span and every pushed metric carries. The collector turns service.name into
 * `job`, service.instance.id into `instance`, and the k8s.* ones into `namespace` and `pod`, the labels the alert
 * rules group by; without a distinct instance id per pod, two pods' cumulative counters would collide in one
 * series.
 *
 * Sources, later wins: OTEL_RESOURCE_ATTRIBUTES; Knative's own K_SERVICE / K_REVISION (faas.*) and the pod's
 * host name, which Kubernetes sets to the pod name; POD_NAME / POD_NAMESPACE (downward API) when given;
 * OTEL_SERVICE_NAME.
 */
export function resourceAttributes(otel: OtelConfig, host: string = hostname()): Record<string, string> {
  const attributes: Record<string, string> = parseResourceAttributes(otel.resourceAttributes);
  const inKubernetes = otel.knativeService !== undefined || otel.podName !== undefined;
  if (otel.knativeService) attributes["faas.name"] = otel.knativeService;
  if (otel.knativeRevision) attributes["faas.version"] = otel.knativeRevision;
  const pod = otel.podName ?? attributes["k8s.pod.name"] ?? (inKubernetes ? host : undefined);
  if (pod) attributes["k8s.pod.name"] = pod;
  if (otel.podNamespace) attributes["k8s.namespace.name"] = otel.podNamespace;
  attributes["service.instance.id"] ??= pod ?? randomUUID();
  attributes["service.name"] = otel.serviceName ?? attributes["service.name"] ?? "payment-service";
  return attributes;
}

/** OTEL_RESOURCE_ATTRIBUTES: key=value pairs separated by commas, values percent-encoded (W3C Baggage format). */
export function parseResourceAttributes(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (raw ?? "").split(",")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    const key = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    try {
      out[key] = decodeURIComponent(value);
    } catch {
      out[key] = value;
    }
  }
  return out;
}
