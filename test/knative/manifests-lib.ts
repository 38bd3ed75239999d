// Loading, rendering and inspecting the Kubernetes manifests under knative/.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export type Obj = Record<string, unknown>;

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const knativeDir = path.join(repoRoot, "knative");

export function isObj(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads a nested field by dotted path; undefined when any step is missing. */
export function get(value: unknown, dotted: string): unknown {
  let current = value;
  for (const key of dotted.split(".")) {
    if (!isObj(current)) return undefined;
    current = current[key];
  }
  return current;
}

export function objAt(value: unknown, dotted: string): Obj {
  const found = get(value, dotted);
  if (!isObj(found)) throw new Error(`${dotted} is not an object`);
  return found;
}

export function arrAt(value: unknown, dotted: string): unknown[] {
  const found = get(value, dotted);
  return Array.isArray(found) ? found : [];
}

export function strAt(value: unknown, dotted: string): string | undefined {
  const found = get(value, dotted);
  return typeof found === "string" ? found : undefined;
}

export function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObj(value)) return out;
  for (const [key, entry] of Object.entries(value))
    out[key] = typeof entry === "string" ? entry : String(entry);
  return out;
}

export function identify(doc: Obj): string {
  return `${String(doc.apiVersion)} ${String(doc.kind)} ${String(get(doc, "metadata.name"))}`;
}

export function name(doc: unknown): string {
  return strAt(doc, "metadata.name") ?? "";
}

/** Parses YAML text into plain objects; fails on any YAML error instead of skipping the document. */
export function parseYaml(text: string, source: string): Obj[] {
  const out: Obj[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (!isObj(value)) throw new Error(`${source}: a document is not a mapping`);
    out.push(value);
  }
  return out;
}

export interface YamlFile {
  /** Path relative to knative/. */
  file: string;
  docs: Obj[];
}

export function yamlFilesUnder(dir: string): YamlFile[] {
  const files: YamlFile[] = [];
  const walk = (current: string): void => {
    for (const entry of readdirSync(current).sort()) {
      const full = path.join(current, entry);
      if (statSync(full).isDirectory()) walk(full);
      else if (/\.ya?ml$/.test(entry)) {
        const rel = path.relative(dir, full);
        files.push({ file: rel, docs: parseYaml(readFileSync(full, "utf8"), rel) });
      }
    }
  };
  walk(dir);
  return files;
}

export function isKustomization(file: YamlFile): boolean {
  return path.basename(file.file) === "kustomization.yaml";
}

export interface Kustomize {
  command: string;
  args(dir: string): string[];
}

/** A real kustomize: the standalone binary if installed, else the one built into kubectl. */
export function findKustomize(): Kustomize | undefined {
  const pathDirs = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
  const onPath = (bin: string) => pathDirs.some((d) => existsSync(path.join(d, bin)));
  if (onPath("kustomize")) return { command: "kustomize", args: (dir) => ["build", dir] };
  if (onPath("kubectl")) return { command: "kubectl", args: (dir) => ["kustomize", dir] };
  return undefined;
}

export function render(kustomize: Kustomize, dir: string): Obj[] {
  const out = execFileSync(kustomize.command, kustomize.args(dir), {
    encoding: "utf8",
    maxBuffer: 32 * 1024 * 1024,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return parseYaml(out, `render of ${path.relative(repoRoot, dir)}`);
}

export function ofKind(docs: Obj[], apiGroup: string, kind: string): Obj[] {
  return docs.filter((d) => d.kind === kind && groupOf(d) === apiGroup);
}

export function groupOf(doc: Obj): string {
  const apiVersion = String(doc.apiVersion ?? "");
  return apiVersion.includes("/") ? (apiVersion.split("/")[0] ?? "") : "";
}

export function knativeServices(docs: Obj[]): Obj[] {
  return ofKind(docs, "serving.knative.dev", "Service");
}

/** The Knative Services that run one of the functions (the dead-letter display is not one). */
export function functionServices(docs: Obj[]): Obj[] {
  return knativeServices(docs).filter((d) => label(d, "app.kubernetes.io/component") === "function");
}

export function label(doc: unknown, key: string): string | undefined {
  const labels = get(doc, "metadata.labels");
  if (!isObj(labels)) return undefined;
  const value = labels[key];
  return typeof value === "string" ? value : undefined;
}

export function annotation(doc: unknown, dotted: string, key: string): string | undefined {
  const annotations = get(doc, dotted);
  if (!isObj(annotations)) return undefined;
  const value = annotations[key];
  return typeof value === "string" ? value : undefined;
}

/** The labels a revision pod of this Knative Service carries: its template's labels plus Knative's own. */
export function podLabelsOf(ksvc: Obj): Record<string, string> {
  const serviceName = name(ksvc);
  return {
    ...stringMap(get(ksvc, "spec.template.metadata.labels")),
    "serving.knative.dev/service": serviceName,
    "serving.knative.dev/configuration": serviceName,
  };
}

/** Kubernetes label selector semantics: matchLabels and matchExpressions, all of them. */
export function selectorMatches(selector: unknown, labels: Record<string, string>): boolean {
  if (!isObj(selector)) return false;
  for (const [key, value] of Object.entries(stringMap(selector.matchLabels))) {
    if (labels[key] !== value) return false;
  }
  for (const expression of Array.isArray(selector.matchExpressions) ? selector.matchExpressions : []) {
    const key = strAt(expression, "key") ?? "";
    const operator = strAt(expression, "operator");
    const values = arrAt(expression, "values").map(String);
    const has = Object.hasOwn(labels, key);
    const ok =
      operator === "Exists"
        ? has
        : operator === "DoesNotExist"
          ? !has
          : operator === "In"
            ? has && values.includes(labels[key] ?? "")
            : operator === "NotIn"
              ? !has || !values.includes(labels[key] ?? "")
              : false;
    if (!ok) return false;
  }
  return true;
}
