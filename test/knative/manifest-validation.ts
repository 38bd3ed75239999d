// Schema validation of every manifest: the published models where there is one (kubernetes-models,
// @kubernetes-models/knative), a strict structural check where none is installed (Gateway API, KafkaSink),
// and Knative's own field restrictions, which no OpenAPI schema expresses.
import { Broker, Trigger } from "@kubernetes-models/knative/eventing.knative.dev/v1";
import { Service as KnativeService } from "@kubernetes-models/knative/serving.knative.dev/v1";
import { PingSource, SinkBinding } from "@kubernetes-models/knative/sources.knative.dev/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { CronJob, Job } from "kubernetes-models/batch/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from "kubernetes-models/v1";
import { isObj, type Obj } from "./manifests-lib.ts";

type Model = new (data: never) => { validate(): void };

const models: Record<string, Model> = {
  "v1/Namespace": Namespace,
  "v1/ServiceAccount": ServiceAccount,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "batch/v1/CronJob": CronJob,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "serving.knative.dev/v1/Service": KnativeService,
  "eventing.knative.dev/v1/Broker": Broker,
  "eventing.knative.dev/v1/Trigger": Trigger,
  "sources.knative.dev/v1/SinkBinding": SinkBinding,
  "sources.knative.dev/v1/PingSource": PingSource,
};

// ---- a small strict schema language for the kinds without an installed model ----

type Schema =
  | { t: "string"; pattern?: RegExp; enum?: readonly string[] }
  | { t: "int"; min?: number; max?: number }
  | { t: "bool" }
  | { t: "array"; of: Schema; min?: number; max?: number }
  | { t: "map"; of: Schema }
  | { t: "object"; fields: Record<string, Schema>; required?: readonly string[] };

const str = (extra: { pattern?: RegExp; enum?: readonly string[] } = {}): Schema => ({
  t: "string",
  ...extra,
});
const int = (min?: number, max?: number): Schema => ({ t: "int", min, max });
const arr = (of: Schema, min?: number, max?: number): Schema => ({ t: "array", of, min, max });
const obj = (fields: Record<string, Schema>, required: readonly string[] = []): Schema => ({
  t: "object",
  fields,
  required,
});

function check(value: unknown, schema: Schema, at: string, errors: string[]): void {
  switch (schema.t) {
    case "string":
      if (typeof value !== "string") errors.push(`${at} must be a string`);
      else if (schema.pattern && !schema.pattern.test(value))
        errors.push(`${at} "${value}" does not match ${schema.pattern}`);
      else if (schema.enum && !schema.enum.includes(value))
        errors.push(`${at} "${value}" is not one of ${schema.enum.join(", ")}`);
      return;
    case "int":
      if (typeof value !== "number" || !Number.isInteger(value)) errors.push(`${at} must be an integer`);
      else if (
        (schema.min !== undefined && value < schema.min) ||
        (schema.max !== undefined && value > schema.max)
      )
        errors.push(`${at} ${value} is out of range`);
      return;
    case "bool":
      if (typeof value !== "boolean") errors.push(`${at} must be a boolean`);
      return;
    case "array":
      if (!Array.isArray(value)) {
        errors.push(`${at} must be a list`);
        return;
      }
      if (schema.min !== undefined && value.length < schema.min)
        errors.push(`${at} needs at least ${schema.min} items`);
      if (schema.max !== undefined && value.length > schema.max)
        errors.push(`${at} allows at most ${schema.max} items`);
      value.forEach((item, i) => {
        check(item, schema.of, `${at}[${i}]`, errors);
      });
      return;
    case "map":
      if (!isObj(value)) {
        errors.push(`${at} must be a mapping`);
        return;
      }
      for (const [key, item] of Object.entries(value)) check(item, schema.of, `${at}.${key}`, errors);
      return;
    case "object":
      if (!isObj(value)) {
        errors.push(`${at} must be a mapping`);
        return;
      }
      for (const key of schema.required ?? []) if (!(key in value)) errors.push(`${at}.${key} is required`);
      for (const [key, item] of Object.entries(value)) {
        const field = schema.fields[key];
        if (!field) errors.push(`${at}.${key} is not a known field`);
        else check(item, field, `${at}.${key}`, errors);
      }
      return;
  }
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const hostname = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const metadata = obj(
  {
    name: str({ pattern: dnsLabel }),
    namespace: str({ pattern: dnsLabel }),
    labels: { t: "map", of: str() },
    annotations: { t: "map", of: str() },
  },
  ["name"],
);
const typeMeta = (apiVersion: string, kind: string) => ({
  apiVersion: str({ enum: [apiVersion] }),
  kind: str({ enum: [kind] }),
  metadata,
});

// Gateway API v1 (standard channel) HTTPRoute, the fields a route may carry.
const parentRef = obj(
  {
    group: str(),
    kind: str(),
    namespace: str({ pattern: dnsLabel }),
    name: str(),
    sectionName: str(),
    port: int(1, 65535),
  },
  ["name"],
);
const httpMethods = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"] as const;
const headerMatch = obj({ type: str({ enum: ["Exact", "RegularExpression"] }), name: str(), value: str() }, [
  "name",
  "value",
]);
const routeMatch = obj({
  path: obj({
    type: str({ enum: ["Exact", "PathPrefix", "RegularExpression"] }),
    value: str({ pattern: /^\// }),
  }),
  method: str({ enum: httpMethods }),
  headers: arr(headerMatch, 0, 16),
  queryParams: arr(headerMatch, 0, 16),
});
const headerModifier = obj({
  set: arr(obj({ name: str(), value: str() }, ["name", "value"])),
  add: arr(obj({ name: str(), value: str() }, ["name", "value"])),
  remove: arr(str()),
});
const routeFilter = obj(
  {
    type: str({
      enum: [
        "RequestHeaderModifier",
        "ResponseHeaderModifier",
        "RequestMirror",
        "RequestRedirect",
        "URLRewrite",
        "ExtensionRef",
      ],
    }),
    urlRewrite: obj({
      hostname: str({ pattern: hostname }),
      path: obj(
        {
          type: str({ enum: ["ReplaceFullPath", "ReplacePrefixMatch"] }),
          replaceFullPath: str(),
          replacePrefixMatch: str(),
        },
        ["type"],
      ),
    }),
    requestHeaderModifier: headerModifier,
    responseHeaderModifier: headerModifier,
  },
  ["type"],
);
const backendRef = obj(
  {
    group: str(),
    kind: str(),
    name: str(),
    namespace: str({ pattern: dnsLabel }),
    port: int(1, 65535),
    weight: int(0, 1_000_000),
    filters: arr(routeFilter),
  },
  ["name"],
);
const duration = str({ pattern: /^([0-9]{1,5}(h|m|s|ms)){1,4}$/ });
const routeRule = obj({
  name: str({ pattern: dnsLabel }),
  matches: arr(routeMatch, 0, 64),
  filters: arr(routeFilter, 0, 16),
  backendRefs: arr(backendRef, 0, 16),
  timeouts: obj({ request: duration, backendRequest: duration }),
});
const httpRoute = obj(
  {
    ...typeMeta("gateway.networking.k8s.io/v1", "HTTPRoute"),
    spec: obj(
      {
        parentRefs: arr(parentRef, 1, 32),
        hostnames: arr(str({ pattern: hostname }), 0, 16),
        rules: arr(routeRule, 1, 16),
      },
      ["parentRefs", "rules"],
    ),
  },
  ["apiVersion", "kind", "metadata", "spec"],
);
const referenceGrant = obj(
  {
    ...typeMeta("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"),
    spec: obj(
      {
        from: arr(
          obj({ group: str(), kind: str(), namespace: str({ pattern: dnsLabel }) }, [
            "group",
            "kind",
            "namespace",
          ]),
          1,
          16,
        ),
        to: arr(obj({ group: str(), kind: str(), name: str() }, ["group", "kind"]), 1, 16),
      },
      ["from", "to"],
    ),
  },
  ["apiVersion", "kind", "metadata", "spec"],
);
// Knative Kafka's KafkaSink (eventing.knative.dev/v1alpha1).
const kafkaSink = obj(
  {
    ...typeMeta("eventing.knative.dev/v1alpha1", "KafkaSink"),
    spec: obj(
      {
        topic: str(),
        bootstrapServers: arr(str({ pattern: /^[^\s:]+:\d+$/ }), 1),
        contentMode: str({ enum: ["binary", "structured"] }),
        numPartitions: int(1),
        replicationFactor: int(1),
        auth: obj({ secret: obj({ ref: obj({ name: str() }, ["name"]) }, ["ref"]) }),
      },
      ["topic", "bootstrapServers"],
    ),
  },
  ["apiVersion", "kind", "metadata", "spec"],
);

const structural: Record<string, Schema> = {
  "gateway.networking.k8s.io/v1/HTTPRoute": httpRoute,
  "gateway.networking.k8s.io/v1beta1/ReferenceGrant": referenceGrant,
  "eventing.knative.dev/v1alpha1/KafkaSink": kafkaSink,
};

/** Extra rules the Gateway API CRDs enforce with CEL, beyond field shapes. */
function httpRouteRules(doc: Obj, errors: string[]): void {
  const rules = (doc.spec as Obj).rules as Obj[];
  rules.forEach((rule, i) => {
    for (const filter of (rule.filters as Obj[] | undefined) ?? []) {
      if (filter.type === "URLRewrite" && !filter.urlRewrite)
        errors.push(`rules[${i}]: URLRewrite filter without urlRewrite`);
    }
    for (const ref of (rule.backendRefs as Obj[] | undefined) ?? []) {
      const isService = (ref.kind ?? "Service") === "Service" && (ref.group ?? "") === "";
      if (isService && ref.port === undefined) errors.push(`rules[${i}]: a Service backendRef needs a port`);
    }
  });
}

/** Validates one complete manifest; returns the problems found (empty when valid). */
export function validateManifest(doc: Obj): string[] {
  const key = `${String(doc.apiVersion)}/${String(doc.kind)}`;
  const model = models[key];
  if (model) {
    try {
      new model(doc as never).validate();
      return [];
    } catch (error) {
      return [error instanceof Error ? error.message : String(error)];
    }
  }
  const schema = structural[key];
  if (!schema) return [`no validator for ${key}: add a model or a structural schema`];
  const errors: string[] = [];
  check(doc, schema, "", errors);
  if (errors.length === 0 && key === "gateway.networking.k8s.io/v1/HTTPRoute") httpRouteRules(doc, errors);
  return errors;
}

// ---- Knative Serving's restrictions on the pod template (its webhook rejects anything else) ----

/** PodSpec fields a Knative revision accepts without feature flags, plus Knative's own. */
export const KNATIVE_POD_FIELDS = new Set([
  "containers",
  "volumes",
  "serviceAccountName",
  "imagePullSecrets",
  "enableServiceLinks",
  "containerConcurrency",
  "timeoutSeconds",
  "responseStartTimeoutSeconds",
  "idleTimeoutSeconds",
]);
export const KNATIVE_CONTAINER_FIELDS = new Set([
  "name",
  "args",
  "command",
  "env",
  "envFrom",
  "workingDir",
  "image",
  "imagePullPolicy",
  "livenessProbe",
  "readinessProbe",
  "ports",
  "resources",
  "securityContext",
  "terminationMessagePath",
  "terminationMessagePolicy",
  "volumeMounts",
]);
export const KNATIVE_SECURITY_CONTEXT_FIELDS = new Set([
  "runAsNonRoot",
  "runAsUser",
  "runAsGroup",
  "readOnlyRootFilesystem",
  "allowPrivilegeEscalation",
  "capabilities",
  "seccompProfile",
]);
/** Set by Knative itself; a user value is rejected. */
export const KNATIVE_RESERVED_ENV = new Set(["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"]);
export const KNATIVE_AUTOSCALING_ANNOTATIONS = new Set(
  [
    "class",
    "metric",
    "target",
    "target-utilization-percentage",
    "min-scale",
    "max-scale",
    "initial-scale",
    "activation-scale",
    "scale-down-delay",
    "scale-to-zero-pod-retention-period",
    "window",
    "panic-window-percentage",
    "panic-threshold-percentage",
  ].map((a) => `autoscaling.knative.dev/${a}`),
);

/** Problems with a Knative Service's pod template that the Knative webhook would reject. */
export function knativeTemplateProblems(ksvc: Obj): string[] {
  const problems: string[] = [];
  const template = (ksvc.spec as Obj | undefined)?.template as Obj | undefined;
  const spec = template?.spec as Obj | undefined;
  if (!spec) return ["spec.template.spec is missing"];
  for (const key of Object.keys(spec))
    if (!KNATIVE_POD_FIELDS.has(key)) problems.push(`pod field ${key} is not allowed`);
  const containers = (spec.containers as Obj[] | undefined) ?? [];
  if (containers.length !== 1) problems.push(`expected one container, found ${containers.length}`);
  for (const container of containers) {
    for (const key of Object.keys(container))
      if (!KNATIVE_CONTAINER_FIELDS.has(key)) problems.push(`container field ${key} is not allowed`);
    for (const key of Object.keys((container.securityContext as Obj | undefined) ?? {}))
      if (!KNATIVE_SECURITY_CONTEXT_FIELDS.has(key)) problems.push(`securityContext.${key} is not allowed`);
    for (const env of (container.env as Obj[] | undefined) ?? [])
      if (KNATIVE_RESERVED_ENV.has(String(env.name)))
        problems.push(`env ${String(env.name)} is reserved by Knative`);
    const ports = (container.ports as Obj[] | undefined) ?? [];
    if (ports.length > 1) problems.push("at most one port");
    for (const port of ports)
      if (port.name !== undefined && port.name !== "http1" && port.name !== "h2c")
        problems.push(`port name ${String(port.name)} must be http1 or h2c`);
  }
  const annotations = (template?.metadata as Obj | undefined)?.annotations as Obj | undefined;
  for (const key of Object.keys(annotations ?? {}))
    if (key.startsWith("autoscaling.knative.dev/") && !KNATIVE_AUTOSCALING_ANNOTATIONS.has(key))
      problems.push(`unknown annotation ${key}`);
  return problems;
}
