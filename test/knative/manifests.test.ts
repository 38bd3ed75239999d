// The Kubernetes manifests under knative/: every file is schema-valid, every overlay renders with a real
// kustomize, and what renders agrees with the code: one Knative Service per function folder, config keys
// the service reads, public routes that reach their own function (and internal ones that are not public),
// events wired to the functions that handle them.
import { appendFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as v from "valibot";
import { afterAll, describe, expect, it } from "vitest";
import { functionDefinitions } from "../../functions/registry.ts";
import { CONFIG_VARIABLES, EnvSchema, REQUIRED_IN_PRODUCTION } from "../../lib/config/env.ts";
import { contractRoutes, type FunctionRoutes } from "./api-routes.ts";
import { concretePath, matchingRules } from "./http-route.ts";
import { knativeTemplateProblems, validateManifest } from "./manifest-validation.ts";
import {
  annotation,
  arrAt,
  findKustomize,
  functionServices,
  get,
  identify,
  isKustomization,
  isObj,
  knativeDir,
  knativeServices,
  label,
  name,
  type Obj,
  objAt,
  ofKind,
  parseYaml,
  podLabelsOf,
  render,
  repoRoot,
  selectorMatches,
  strAt,
  stringMap,
  yamlFilesUnder,
} from "./manifests-lib.ts";

const NAMESPACE = "payment-service";
const IMAGE = "ghcr.io/payment-service/payment-service";
const CONFIG_MAP = "payment-service-config";
const SECRET = "payment-service-secrets";
const SECRET_TEMPLATE = "base/secret.example.yaml";
/** Variables that carry credentials: they must come from the Secret, never the ConfigMap. */
const SECRET_VARIABLES = [
  "DATABASE_URL",
  "POSTGRES_PASSWORD",
  "REDIS_URL",
  "REDIS_PASSWORD",
  "JWT_SECRET",
  "SANDBOX_WEBHOOK_SECRET",
  "STRIPE_SECRET_KEY",
  "STRIPE_WEBHOOK_SECRET",
  "YOOKASSA_SECRET_KEY",
];
const OUTBOX_WRITERS = ["cancel", "confirm", "create", "health", "webhook"];
const PROVIDERS = ["sandbox", "stripe", "yookassa"];
const READ_MOSTLY = new Set(["status", "health"]);

interface Expectation {
  dir: string;
  nodeEnv: "production" | "development";
  brokerClass: "MTChannelBasedBroker" | "Kafka";
  deadLetterKind: "Service" | "KafkaSink";
  minScale: Record<string, number>;
  maxScale: number;
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
  imageTag: (tag: string) => boolean;
  dbDriver: "pg" | "neon";
  /** Functions protected by a PodDisruptionBudget. */
  pdbs: string[];
  /** Whether it includes ../gateway-access (base cannot: its namespace transformer would move the grant). */
  gatewayAccess: boolean;
}

const warmPaymentPath = (warm: number) => ({
  create: warm,
  confirm: warm,
  cancel: 0,
  status: 0,
  webhook: 0,
  health: 0,
});
const seedResources = { requests: { cpu: "200m", memory: "256Mi" }, limits: { cpu: "1000m", memory: "1Gi" } };
const devResources = { requests: { cpu: "50m", memory: "128Mi" }, limits: { cpu: "500m", memory: "512Mi" } };
const dev: Expectation = {
  dir: "overlays/dev",
  nodeEnv: "development",
  brokerClass: "MTChannelBasedBroker",
  deadLetterKind: "Service",
  minScale: warmPaymentPath(0),
  maxScale: 3,
  ...devResources,
  imageTag: (tag) => tag === "dev",
  dbDriver: "pg",
  pdbs: [],
  gatewayAccess: true,
};
const targets: Expectation[] = [
  {
    dir: "base",
    nodeEnv: "production",
    brokerClass: "MTChannelBasedBroker",
    deadLetterKind: "Service",
    minScale: warmPaymentPath(1),
    maxScale: 20,
    ...seedResources,
    imageTag: (tag) => tag.length > 0,
    dbDriver: "pg",
    pdbs: [],
    gatewayAccess: false,
  },
  dev,
  {
    dir: "overlays/production",
    nodeEnv: "production",
    brokerClass: "Kafka",
    deadLetterKind: "KafkaSink",
    minScale: warmPaymentPath(2),
    maxScale: 20,
    ...seedResources,
    imageTag: (tag) => /^\d+\.\d+\.\d+/.test(tag),
    dbDriver: "pg",
    pdbs: ["confirm", "create"],
    gatewayAccess: true,
  },
  { ...dev, dir: "overlays/neon", dbDriver: "neon" },
];

const kustomize = findKustomize();
const renders = new Map<string, Obj[]>();
function rendered(dir: string): Obj[] {
  if (!kustomize)
    throw new Error("no kustomize: install kubectl (it embeds kustomize) or the kustomize binary");
  let docs = renders.get(dir);
  if (!docs) {
    docs = render(kustomize, path.join(knativeDir, dir));
    renders.set(dir, docs);
  }
  return docs;
}

function one(docs: Obj[], group: string, kind: string, objectName: string): Obj {
  const found = ofKind(docs, group, kind).filter((d) => name(d) === objectName);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${objectName}, found ${found.length}`);
  return found[0] as Obj;
}

function container(ksvc: Obj): Obj {
  const first = arrAt(ksvc, "spec.template.spec.containers")[0];
  if (!isObj(first)) throw new Error(`${name(ksvc)} has no container`);
  return first;
}

function templateAnnotation(ksvc: Obj, key: string): string | undefined {
  return annotation(ksvc, "spec.template.metadata.annotations", key);
}

function secretTemplate(): Obj {
  const file = path.join(knativeDir, SECRET_TEMPLATE);
  const [doc] = parseYaml(readFileSync(file, "utf8"), SECRET_TEMPLATE);
  if (!doc) throw new Error(`${SECRET_TEMPLATE} is empty`);
  return doc;
}

const functionFolders = readdirSync(path.join(repoRoot, "functions"))
  .filter((entry) => statSync(path.join(repoRoot, "functions", entry)).isDirectory())
  .sort();

describe("manifest files", () => {
  const files = yamlFilesUnder(knativeDir);

  /** Files each kustomization pulls in, as paths relative to knative/ (directories end in /). */
  function referencedFiles(): { resources: Set<string>; patches: Set<string> } {
    const resources = new Set<string>();
    const patches = new Set<string>();
    for (const file of files.filter(isKustomization)) {
      const dir = path.dirname(file.file);
      const kustomization = file.docs[0] ?? {};
      for (const entry of [...arrAt(kustomization, "resources"), ...arrAt(kustomization, "components")])
        resources.add(path.normalize(path.join(dir, String(entry))));
      for (const patch of arrAt(kustomization, "patches")) {
        const patchPath = strAt(patch, "path");
        if (patchPath) patches.add(path.normalize(path.join(dir, patchPath)));
      }
    }
    return { resources, patches };
  }

  it("finds the manifests", () => {
    expect(files.length).toBeGreaterThan(15);
    expect(files.filter(isKustomization).map((f) => f.file)).toEqual(
      expect.arrayContaining([
        "base/kustomization.yaml",
        "overlays/dev/kustomization.yaml",
        "overlays/production/kustomization.yaml",
        "overlays/neon/kustomization.yaml",
      ]),
    );
  });

  it("validates every complete manifest against its schema", () => {
    const { patches } = referencedFiles();
    const problems: string[] = [];
    let validated = 0;
    for (const file of files) {
      if (isKustomization(file) || patches.has(file.file)) continue;
      for (const doc of file.docs) {
        validated++;
        for (const problem of validateManifest(doc))
          problems.push(`${file.file}: ${identify(doc)}: ${problem}`);
      }
    }
    expect(problems).toEqual([]);
    expect(validated).toBeGreaterThan(25);
  });

  it("uses every file from some kustomization, except the Secret template", () => {
    const { resources, patches } = referencedFiles();
    const orphans = files
      .filter((f) => !isKustomization(f) && !resources.has(f.file) && !patches.has(f.file))
      .map((f) => f.file);
    expect(orphans).toEqual([SECRET_TEMPLATE]);
  });

  it("keeps the Secret a template: known variables, no values, never applied by kustomize", () => {
    const secret = secretTemplate();
    expect(validateManifest(secret)).toEqual([]);
    expect(name(secret)).toBe(SECRET);
    const data = stringMap(secret.stringData);
    expect(Object.keys(data).length).toBeGreaterThan(5);
    expect(Object.keys(data).filter((k) => !(CONFIG_VARIABLES as readonly string[]).includes(k))).toEqual([]);
    expect(Object.values(data).every((value) => value === "")).toBe(true);
    for (const target of targets) expect(ofKind(rendered(target.dir), "", "Secret")).toEqual([]);
  });

  it("has one Knative Service per function folder and a folder for every function Service", () => {
    expect(functionFolders.length).toBeGreaterThanOrEqual(6);
    const services = functionServices(rendered("base")).map(name).sort();
    expect(services).toEqual(functionFolders);
    expect(functionDefinitions.map((d) => d.name).sort()).toEqual(functionFolders);
  });
});

describe("functions and manifests agree", () => {
  it("every function registers the routes the HTTPRoute, the Triggers and the PingSources send it", () => {
    const registered = new Set(
      functionDefinitions.flatMap((fn) =>
        fn.routes.map((r) => `${fn.name} ${r.method.toUpperCase()} ${r.path}`),
      ),
    );
    const missing = contractRoutes.flatMap((fn) =>
      fn.routes.map((r) => `${fn.name} ${r.method} ${r.path}`).filter((route) => !registered.has(route)),
    );
    expect(registered.size).toBeGreaterThan(20);
    expect(missing).toEqual([]);
  });
});

describe.each(targets)("$dir", (target) => {
  const docs = () => rendered(target.dir);
  const functions = () => functionServices(docs());
  const configMap = () => stringMap(one(docs(), "", "ConfigMap", CONFIG_MAP).data);

  it("renders with kustomize, and every rendered object passes its schema", () => {
    expect(kustomize, "no kustomize or kubectl on PATH").toBeDefined();
    const problems = docs().flatMap((doc) => validateManifest(doc).map((p) => `${identify(doc)}: ${p}`));
    expect(problems).toEqual([]);
    expect(functions().map(name).sort()).toEqual(functionFolders);
  });

  it("puts every object in the service's namespace, except the gateway's ReferenceGrant", () => {
    for (const doc of docs()) {
      if (doc.kind === "Namespace") expect(name(doc)).toBe(NAMESPACE);
      else if (doc.kind === "ReferenceGrant") expect(strAt(doc, "metadata.namespace")).not.toBe(NAMESPACE);
      else expect(strAt(doc, "metadata.namespace"), identify(doc)).toBe(NAMESPACE);
    }
  });

  it("uses only pod and container fields Knative accepts", () => {
    const services = knativeServices(docs());
    expect(services.length).toBeGreaterThanOrEqual(6);
    for (const ksvc of services) expect(knativeTemplateProblems(ksvc), name(ksvc)).toEqual([]);
  });

  it("runs each function from the one image with its FUNCTION_TARGET, config and secrets", () => {
    for (const ksvc of functions()) {
      const c = container(ksvc);
      const [image, tag = ""] = String(c.image).split(":");
      expect(image).toBe(IMAGE);
      expect(target.imageTag(tag), `${name(ksvc)} image tag ${tag}`).toBe(true);
      expect(arrAt(c, "env")).toContainEqual({ name: "FUNCTION_TARGET", value: name(ksvc) });
      expect(arrAt(c, "envFrom")).toEqual([
        { configMapRef: { name: CONFIG_MAP } },
        { secretRef: { name: SECRET } },
      ]);
      expect(get(ksvc, "spec.template.spec.serviceAccountName")).toBe("payment-service");
      expect(get(ksvc, "spec.template.spec.enableServiceLinks")).toBe(false);
    }
  });

  it("probes readiness on /ready and liveness on /health, and runs locked down", () => {
    for (const ksvc of functions()) {
      const c = container(ksvc);
      expect(strAt(c, "readinessProbe.httpGet.path")).toBe("/ready");
      expect(strAt(c, "livenessProbe.httpGet.path")).toBe("/health");
      expect(get(c, "securityContext")).toMatchObject({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      });
      expect(get(c, "securityContext.runAsUser")).not.toBe(0);
      expect(arrAt(c, "volumeMounts")).toContainEqual({ name: "tmp", mountPath: "/tmp" });
      expect(get(c, "resources")).toEqual({ requests: target.requests, limits: target.limits });
      expect(label(ksvc, "networking.knative.dev/visibility"), name(ksvc)).toBe("cluster-local");
    }
  });

  it("autoscales on concurrency at 70 % of containerConcurrency, warm only on the payment path", () => {
    const minScales: Record<string, number> = {};
    for (const ksvc of functions()) {
      const concurrency = Number(get(ksvc, "spec.template.spec.containerConcurrency"));
      expect(concurrency).toBe(READ_MOSTLY.has(name(ksvc)) ? 100 : 50);
      expect(templateAnnotation(ksvc, "autoscaling.knative.dev/metric")).toBe("concurrency");
      expect(Number(templateAnnotation(ksvc, "autoscaling.knative.dev/target"))).toBe(
        Math.round(concurrency * 0.7),
      );
      // Knative multiplies target by this percentage: 100 keeps the 70 % from being applied twice.
      expect(templateAnnotation(ksvc, "autoscaling.knative.dev/target-utilization-percentage")).toBe("100");
      expect(Number(templateAnnotation(ksvc, "autoscaling.knative.dev/max-scale"))).toBe(target.maxScale);
      const minScale = Number(templateAnnotation(ksvc, "autoscaling.knative.dev/min-scale"));
      minScales[name(ksvc)] = minScale;
      expect(
        Number(templateAnnotation(ksvc, "autoscaling.knative.dev/initial-scale")),
      ).toBeGreaterThanOrEqual(Math.max(minScale, 1));
      if (minScale === 0)
        expect(
          templateAnnotation(ksvc, "autoscaling.knative.dev/scale-to-zero-pod-retention-period"),
        ).toMatch(/^\d+[sm]$/);
      // Also the pod's grace period: ~30 s of queue-proxy draining, then ~20 s of the app's own shutdown.
      const timeout = Number(get(ksvc, "spec.template.spec.timeoutSeconds"));
      expect(timeout).toBeGreaterThanOrEqual(50);
      expect(timeout).toBeLessThanOrEqual(600);
    }
    expect(minScales).toEqual(target.minScale);
  });

  it("protects the warm services with PodDisruptionBudgets that still let nodes drain", () => {
    const pdbs = ofKind(docs(), "policy", "PodDisruptionBudget");
    const protectedServices = pdbs.map((pdb) => {
      const selected = functions().filter((ksvc) =>
        selectorMatches(get(pdb, "spec.selector"), podLabelsOf(ksvc)),
      );
      expect(selected.length, name(pdb)).toBe(1);
      const ksvc = selected[0] as Obj;
      const minScale = Number(templateAnnotation(ksvc, "autoscaling.knative.dev/min-scale"));
      expect(Number(get(pdb, "spec.minAvailable"))).toBeLessThan(minScale);
      return name(ksvc);
    });
    expect(protectedServices.sort()).toEqual(target.pdbs);
  });

  it("configures only variables the service reads, with values it accepts", () => {
    const data = configMap();
    const known = new Set<string>(CONFIG_VARIABLES);
    expect(Object.keys(data).length).toBeGreaterThan(20);
    expect(Object.keys(data).filter((k) => !known.has(k))).toEqual([]);
    expect(Object.keys(data).filter((k) => SECRET_VARIABLES.includes(k))).toEqual([]);
    const parsed = v.safeParse(EnvSchema, data);
    expect(
      parsed.success ? [] : parsed.issues.map((i) => `${String(i.path?.[0]?.key)}: ${i.message}`),
    ).toEqual([]);
    expect(data.NODE_ENV).toBe(target.nodeEnv);
    expect(data.DB_DRIVER).toBe(target.dbDriver);
    expect(data.POSTGRES_HOST, "a real PostgreSQL in every environment").toBeTruthy();
    if (target.dbDriver === "neon") expect(data.NEON_WS_PROXY).toMatch(/^ws:\/\/[a-z0-9.-]+:\d+\/v1$/);
  });

  it("provides every variable production requires", () => {
    const secretKeys = Object.keys(stringMap(secretTemplate().stringData));
    for (const ksvc of functions()) {
      const env = arrAt(container(ksvc), "env").map((e) => strAt(e, "name") ?? "");
      const provided = new Set([...Object.keys(configMap()), ...secretKeys, ...env]);
      expect(REQUIRED_IN_PRODUCTION.length).toBeGreaterThan(0);
      for (const group of REQUIRED_IN_PRODUCTION) {
        expect(
          group.split("|").some((variable) => provided.has(variable)),
          `${name(ksvc)}: ${group}`,
        ).toBe(true);
      }
    }
  });

  describe("public routing", () => {
    const route = () => one(docs(), "gateway.networking.k8s.io", "HTTPRoute", "payment-api");
    const host = () => String(arrAt(route(), "spec.hostnames")[0]);

    /** Where a route of a function must be reachable from outside, if at all. */
    function publicTarget(fn: string, method: string, routePath: string): string | undefined {
      if (routePath.startsWith("/internal/")) return undefined; // scheduled work, called by PingSources
      if (routePath === "/metrics") return undefined; // scraped in-cluster
      if (method === "POST" && routePath === "/") return undefined; // CloudEvents from the Triggers
      if (routePath === "/health" || routePath === "/ready") return "health"; // every function answers these
      return fn;
    }

    /** Checks each route against the HTTPRoute; returns the rules used and how many routes were (not) public. */
    function checkRouting(definitions: FunctionRoutes[]): {
      used: Set<number>;
      publicRoutes: number;
      privateRoutes: number;
    } {
      const used = new Set<number>();
      let publicRoutes = 0;
      let privateRoutes = 0;
      for (const definition of definitions) {
        for (const r of definition.routes) {
          const requestPath = concretePath(r.path);
          const matched = matchingRules(route(), host(), r.method, requestPath);
          const expected = publicTarget(definition.name, r.method, r.path);
          const what = `${definition.name}: ${r.method} ${r.path}`;
          if (expected === undefined) {
            privateRoutes++;
            expect(matched, `${what} must not be public`).toEqual([]);
            continue;
          }
          publicRoutes++;
          expect(matched.length, `${what} must match exactly one rule`).toBe(1);
          const rule = matched[0];
          expect(rule?.rewriteHost, what).toBe(`${expected}.${NAMESPACE}.svc.cluster.local`);
          if (rule) used.add(rule.rule);
        }
      }
      return { used, publicRoutes, privateRoutes };
    }

    it("routes every route of the API contract to its own function's cluster-local host, and nothing internal", () => {
      const { used, publicRoutes, privateRoutes } = checkRouting(contractRoutes);
      expect(publicRoutes).toBe(19);
      expect(privateRoutes).toBe(3);
      // No rule routes something no function serves.
      expect(used.size).toBe(arrAt(route(), "spec.rules").length);
    });

    it("routes every route the functions register to its own function, and nothing internal", () => {
      const { publicRoutes } = checkRouting(functionDefinitions);
      expect(publicRoutes).toBeGreaterThan(0);
    });

    it("answers nothing for paths outside the API", () => {
      for (const [method, requestPath] of [
        ["POST", "/internal/outbox/drain"],
        ["GET", "/internal/reconcile"],
        ["GET", "/metrics"],
        ["POST", "/"],
        ["POST", "/v1/payments/pay_1"],
        ["DELETE", "/v1/orders/ord_1"],
        ["GET", "/v1/ordersx"],
        ["POST", "/v1/payments/pay_1/confirm/extra"],
      ] as const) {
        expect(matchingRules(route(), host(), method, requestPath), `${method} ${requestPath}`).toEqual([]);
      }
      expect(matchingRules(route(), "other.example.com", "GET", "/health")).toEqual([]);
    });

    it("rewrites only to function Services, through a backend the ReferenceGrant allows", () => {
      const functionHosts = new Set(
        functions().map((ksvc) => `${name(ksvc)}.${NAMESPACE}.svc.cluster.local`),
      );
      const grants = ofKind(docs(), "gateway.networking.k8s.io", "ReferenceGrant");
      let granted = 0;
      for (const rule of arrAt(route(), "spec.rules")) {
        const rewrites = arrAt(rule, "filters").filter((f) => strAt(f, "type") === "URLRewrite");
        expect(rewrites.length).toBe(1);
        expect(functionHosts.has(strAt(rewrites[0], "urlRewrite.hostname") ?? "")).toBe(true);
        for (const backend of arrAt(rule, "backendRefs")) {
          const backendNs = strAt(backend, "namespace") ?? NAMESPACE;
          if (backendNs === NAMESPACE || !target.gatewayAccess) continue;
          const allowed = grants.some(
            (g) =>
              strAt(g, "metadata.namespace") === backendNs &&
              arrAt(g, "spec.from").some(
                (f) => strAt(f, "kind") === "HTTPRoute" && strAt(f, "namespace") === NAMESPACE,
              ) &&
              arrAt(g, "spec.to").some(
                (t) =>
                  strAt(t, "kind") === "Service" &&
                  [undefined, strAt(backend, "name")].includes(strAt(t, "name")),
              ),
          );
          expect(allowed, `backend ${backendNs}/${strAt(backend, "name")}`).toBe(true);
          granted++;
        }
      }
      if (target.gatewayAccess) expect(granted).toBeGreaterThan(0);
    });

    it("serves the host that PUBLIC_BASE_URL names", () => {
      expect(new URL(configMap().PUBLIC_BASE_URL ?? "http://missing").host).toBe(host());
    });
  });

  describe("eventing", () => {
    const resolves = (ref: unknown): boolean =>
      docs().some(
        (d) =>
          d.kind === strAt(ref, "kind") &&
          d.apiVersion === strAt(ref, "apiVersion") &&
          name(d) === strAt(ref, "name"),
      );

    it("uses the expected broker class and a config that exists", () => {
      const broker = one(docs(), "eventing.knative.dev", "Broker", "payment-events");
      expect(annotation(broker, "metadata.annotations", "eventing.knative.dev/broker.class")).toBe(
        target.brokerClass,
      );
      const config = objAt(broker, "spec.config");
      expect(config.kind).toBe("ConfigMap");
      if (target.brokerClass === "Kafka") {
        const kafka = one(docs(), "", "ConfigMap", String(config.name));
        expect(stringMap(kafka.data)["bootstrap.servers"]).toBeTruthy();
        expect(config.namespace).toBe(NAMESPACE);
      } else {
        expect(config).toMatchObject({ name: "config-br-default-channel", namespace: "knative-eventing" });
      }
      expect(strAt(broker, "spec.delivery.deadLetterSink.ref.kind")).toBe(target.deadLetterKind);
      expect(resolves(get(broker, "spec.delivery.deadLetterSink.ref"))).toBe(true);
    });

    it("delivers provider notifications to webhook, one Trigger per provider, with retries and a dead-letter sink", () => {
      const triggers = ofKind(docs(), "eventing.knative.dev", "Trigger");
      expect(triggers.map((t) => strAt(t, "spec.filter.attributes.provider")).sort()).toEqual(PROVIDERS);
      for (const trigger of triggers) {
        expect(strAt(trigger, "spec.broker")).toBe("payment-events");
        expect(strAt(trigger, "spec.filter.attributes.type")).toBe(
          "io.payment-service.provider.notification",
        );
        const subscriber = get(trigger, "spec.subscriber.ref");
        expect(subscriber).toEqual({
          apiVersion: "serving.knative.dev/v1",
          kind: "Service",
          name: "webhook",
        });
        expect(resolves(subscriber)).toBe(true);
        expect(get(trigger, "spec.delivery")).toMatchObject({
          retry: 10,
          backoffPolicy: "exponential",
          backoffDelay: "PT0.5S",
        });
        const deadLetter = get(trigger, "spec.delivery.deadLetterSink.ref");
        expect(strAt(deadLetter, "kind")).toBe(target.deadLetterKind);
        expect(resolves(deadLetter), `${name(trigger)} dead-letter sink`).toBe(true);
      }
    });

    it("binds K_SINK to exactly the functions that write the outbox", () => {
      const [binding, ...others] = ofKind(docs(), "sources.knative.dev", "SinkBinding");
      expect(others).toEqual([]);
      expect(get(binding, "spec.subject")).toMatchObject({
        apiVersion: "serving.knative.dev/v1",
        kind: "Service",
      });
      const bound = knativeServices(docs())
        .filter((ksvc) =>
          selectorMatches(get(binding, "spec.subject.selector"), stringMap(get(ksvc, "metadata.labels"))),
        )
        .map(name)
        .sort();
      expect(bound).toEqual(OUTBOX_WRITERS);
      expect(get(binding, "spec.sink.ref")).toEqual({
        apiVersion: "eventing.knative.dev/v1",
        kind: "Broker",
        name: "payment-events",
      });
    });

    it("pings health's internal routes on schedule", () => {
      const healthRoutes = contractRoutes.find((d) => d.name === "health")?.routes ?? [];
      const pings = ofKind(docs(), "sources.knative.dev", "PingSource");
      const byUri = Object.fromEntries(
        pings.map((p) => [strAt(p, "spec.sink.uri"), strAt(p, "spec.schedule")]),
      );
      expect(byUri).toEqual({ "/internal/outbox/drain": "* * * * *", "/internal/reconcile": "*/5 * * * *" });
      for (const ping of pings) {
        expect(get(ping, "spec.sink.ref")).toEqual({
          apiVersion: "serving.knative.dev/v1",
          kind: "Service",
          name: "health",
        });
        expect(healthRoutes).toContainEqual({ method: "POST", path: strAt(ping, "spec.sink.uri") });
      }
    });
  });

  describe("network policy", () => {
    it("covers every Knative pod, admits Knative's data path and Prometheus, and allows the egress the service needs", () => {
      const policy = one(docs(), "networking.k8s.io", "NetworkPolicy", "payment-functions");
      for (const ksvc of knativeServices(docs()))
        expect(selectorMatches(get(policy, "spec.podSelector"), podLabelsOf(ksvc)), name(ksvc)).toBe(true);
      const namespaces = arrAt(policy, "spec.ingress")
        .flatMap((rule) => arrAt(rule, "from"))
        .map((peer) => stringMap(get(peer, "namespaceSelector.matchLabels"))["kubernetes.io/metadata.name"]);
      const routeBackends = arrAt(
        one(docs(), "gateway.networking.k8s.io", "HTTPRoute", "payment-api"),
        "spec.rules",
      )
        .flatMap((rule) => arrAt(rule, "backendRefs"))
        .map((b) => strAt(b, "namespace"));
      expect(namespaces).toEqual(
        expect.arrayContaining(["knative-serving", "knative-eventing", ...routeBackends]),
      );
      expect(namespaces).toContain("monitoring");
      const egressPorts = arrAt(policy, "spec.egress").flatMap((rule) =>
        arrAt(rule, "ports").map((p) => `${strAt(p, "protocol")}/${String(get(p, "port"))}`),
      );
      expect(egressPorts).toEqual(
        expect.arrayContaining(["UDP/53", "TCP/5432", "TCP/6379", "TCP/443", "TCP/8080", "TCP/4318"]),
      );
      const migrate = one(docs(), "batch", "Job", "payment-service-migrate");
      const migratePod = stringMap(get(migrate, "spec.template.metadata.labels"));
      expect(selectorMatches(get(policy, "spec.podSelector"), migratePod)).toBe(false);
      const migratePolicy = one(docs(), "networking.k8s.io", "NetworkPolicy", "payment-migrate");
      expect(selectorMatches(get(migratePolicy, "spec.podSelector"), migratePod)).toBe(true);
    });

    if (target.dbDriver === "neon") {
      it("lets the functions and the migration reach the wsproxy, and the wsproxy reach PostgreSQL", () => {
        const wsproxy = one(docs(), "apps", "Deployment", "wsproxy");
        const wsproxyPod = stringMap(get(wsproxy, "spec.template.metadata.labels"));
        const service = one(docs(), "", "Service", "wsproxy");
        expect(selectorMatches({ matchLabels: get(service, "spec.selector") }, wsproxyPod)).toBe(true);
        const port = get(arrAt(service, "spec.ports")[0], "port");
        expect(configMap().NEON_WS_PROXY).toBe(
          `ws://wsproxy.${NAMESPACE}.svc.cluster.local:${String(port)}/v1`,
        );
        for (const policyName of ["payment-functions", "payment-migrate"]) {
          const policy = one(docs(), "networking.k8s.io", "NetworkPolicy", policyName);
          const reaches = arrAt(policy, "spec.egress").some((rule) =>
            arrAt(rule, "to").some((peer) => selectorMatches(get(peer, "podSelector"), wsproxyPod)),
          );
          expect(reaches, policyName).toBe(true);
        }
        const wsproxyContainer = arrAt(wsproxy, "spec.template.spec.containers")[0];
        const env = Object.fromEntries(
          arrAt(wsproxyContainer, "env").map((e) => [strAt(e, "name"), strAt(e, "value")]),
        );
        expect(env.ALLOW_ADDR_REGEX).toBe(`^${configMap().POSTGRES_HOST}:${configMap().POSTGRES_PORT}$`);
      });
    }
  });

  it("migrates with the same image and config before the functions need the schema", () => {
    const job = one(docs(), "batch", "Job", "payment-service-migrate");
    const c = arrAt(job, "spec.template.spec.containers")[0];
    expect(get(c, "command")).toEqual(["node", "dist/migrate.js"]);
    expect(strAt(c, "image")).toBe(strAt(container(functions()[0] as Obj), "image"));
    expect(arrAt(c, "envFrom")).toEqual([
      { configMapRef: { name: CONFIG_MAP } },
      { secretRef: { name: SECRET } },
    ]);
    expect(label(job, "app.kubernetes.io/component")).toBe("migration");
  });
});

describe("production with the reconcile CronJob component", () => {
  let copy: string | undefined;
  afterAll(() => {
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  it("replaces the reconcile PingSource with a CronJob that gets the same image, config and sink", () => {
    if (!kustomize) throw new Error("no kustomize: install kubectl or the kustomize binary");
    // Rendered from a copy, exactly as an overlay would enable it.
    copy = mkdtempSync(path.join(os.tmpdir(), "knative-"));
    cpSync(knativeDir, copy, { recursive: true });
    appendFileSync(
      path.join(copy, "overlays/production/kustomization.yaml"),
      "components:\n  - ../../components/reconcile-cronjob\n",
    );
    const docs = render(kustomize, path.join(copy, "overlays/production"));
    expect(docs.flatMap((doc) => validateManifest(doc))).toEqual([]);
    expect(ofKind(docs, "sources.knative.dev", "PingSource").map((p) => name(p))).toEqual(["outbox-drain"]);
    const cronJob = one(docs, "batch", "CronJob", "payment-service-reconcile");
    const c = arrAt(cronJob, "spec.jobTemplate.spec.template.spec.containers")[0];
    expect(get(c, "command")).toEqual(["node", "dist/reconcile.js"]);
    expect(strAt(c, "image")).toBe(strAt(container(functionServices(docs)[0] as Obj), "image"));
    expect(get(cronJob, "spec.concurrencyPolicy")).toBe("Forbid");
    const binding = one(docs, "sources.knative.dev", "SinkBinding", "payment-events-reconcile");
    expect(get(binding, "spec.subject")).toEqual({
      apiVersion: "batch/v1",
      kind: "CronJob",
      name: "payment-service-reconcile",
    });
    const policy = one(docs, "networking.k8s.io", "NetworkPolicy", "payment-reconcile");
    expect(
      selectorMatches(
        get(policy, "spec.podSelector"),
        stringMap(get(cronJob, "spec.jobTemplate.spec.template.metadata.labels")),
      ),
    ).toBe(true);
  });
});
