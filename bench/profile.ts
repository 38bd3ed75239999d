import { readFileSync } from "node:fs";
import { SourceMap, type SourceMapPayload, type SourceMapping } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/**
 * Where a CPU profile (node --cpu-prof) spent its time: self time per function and per area (our code, each
 * package, Node internals, GC). Frames of the esbuild bundle are mapped back to their sources through dist's
 * source maps, so a bundled function is reported under the file and package it came from.
 *
 *   npx tsx bench/profile.ts bench/results/profile/<file>.cpuprofile [--top 25]
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  where: string;
  self_ms: number;
  self_pct: number;
}

export interface ProfileSummary {
  file: string;
  total_ms: number;
  /** Share of samples where the main thread was busy (not idle). */
  busy_pct: number;
  top_functions: ProfileEntry[];
  top_areas: ProfileEntry[];
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const maps = new Map<string, SourceMap | undefined>();

function sourceMapOf(path: string): SourceMap | undefined {
  if (!maps.has(path)) {
    try {
      maps.set(path, new SourceMap(JSON.parse(readFileSync(`${path}.map`, "utf8")) as SourceMapPayload));
    } catch {
      maps.set(path, undefined);
    }
  }
  return maps.get(path);
}

/** The original file (relative to the project) and line of a frame; bundle frames go through the source map. */
function locate(frame: CallFrame): { file: string; line: number } {
  if (!frame.url) return { file: "", line: 0 };
  if (!frame.url.startsWith("file:")) return { file: frame.url, line: frame.lineNumber + 1 };
  const path = fileURLToPath(frame.url);
  // Our bundle (dist/ or the bench's copy of it) has linked source maps; packages loaded from node_modules do not.
  const map = path.includes("/node_modules/") ? undefined : sourceMapOf(path);
  const entry = map?.findEntry(frame.lineNumber, frame.columnNumber) as SourceMapping | Record<string, never>;
  if (entry && "originalSource" in entry) {
    // The bench runs a copy of dist/ (bench/results/dist-<run>/); its map's relative sources are dist/'s.
    const mapDir = /\/bench\/results\/dist-[^/]+\//.test(path) ? join(ROOT, "dist") : dirname(path);
    const original = entry.originalSource.startsWith("file:")
      ? fileURLToPath(entry.originalSource)
      : resolve(mapDir, entry.originalSource);
    return { file: relative(ROOT, original), line: entry.originalLine + 1 };
  }
  return { file: relative(ROOT, path), line: frame.lineNumber + 1 };
}

/** The package of a node_modules path (scoped ones included), or our own top folder, or Node's internals. */
function areaOf(file: string, name: string): string {
  if (!file) return name.startsWith("(") ? name : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1];
  if (pkg) return pkg;
  if (file.startsWith("node:")) return `node:${file.slice(5).split("/")[0]}`;
  return file.split("/").slice(0, 2).join("/");
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; the time a sample stands for is the gap to the next one.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    const us = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + us);
  }

  const located = new Map<number, { file: string; line: number }>();
  const where = (id: number) => {
    let loc = located.get(id);
    if (!loc) {
      loc = locate((byId.get(id) as ProfileNode).callFrame);
      located.set(id, loc);
    }
    return loc;
  };
  /** The nearest frame on the stack from a package or our code: who the Node and native work was done for. */
  const owner = (id: number): number | undefined => {
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const file = where(at).file;
      if (file && !file.startsWith("node:")) return at;
    }
    return undefined;
  };
  const label = (id: number) => {
    const node = byId.get(id) as ProfileNode;
    const loc = where(id);
    return {
      name: node.callFrame.functionName || "(anonymous)",
      at: loc.file ? `${loc.file}:${loc.line}` : "",
    };
  };

  const functions = new Map<string, ProfileEntry>();
  const areas = new Map<string, ProfileEntry>();
  const add = (map: Map<string, ProfileEntry>, key: string, name: string, at: string, us: number) => {
    const entry = map.get(key) ?? { name, where: at, self_ms: 0, self_pct: 0 };
    entry.self_ms += us / 1000;
    map.set(key, entry);
  };
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    if (!byId.has(id)) continue;
    total += us;
    const { name, at } = label(id);
    if (name === "(idle)") {
      idle += us;
      continue;
    }
    const caller = owner(id);
    const callerLabel = caller === undefined ? undefined : label(caller);
    // A native or Node-internal frame says little alone (writev, a hash): name the code it ran for.
    const shownAt =
      at && !at.startsWith("node:")
        ? at
        : callerLabel
          ? `${at || "native"} ← ${callerLabel.name} ${callerLabel.at}`
          : at;
    add(functions, `${name} ${shownAt}`, name, shownAt, us);
    const area = caller === undefined ? areaOf(where(id).file, name) : areaOf(where(caller).file, "");
    add(areas, area, area, "", us);
  }
  // Percentages of busy time: idle is the event loop waiting, which says nothing about what costs.
  const busy = Math.max(1, total - idle);
  const finish = (list: Iterable<ProfileEntry>) =>
    [...list]
      .sort((a, b) => b.self_ms - a.self_ms)
      .slice(0, top)
      .map((e) => ({
        ...e,
        self_ms: Math.round(e.self_ms),
        self_pct: Math.round(((e.self_ms * 1000) / busy) * 1000) / 10,
      }));
  const path = resolve(file);
  return {
    file: path.startsWith(`${ROOT}/`) ? relative(ROOT, path) : path,
    total_ms: Math.round(total / 1000),
    busy_pct: Math.round(((total - idle) / Math.max(1, total)) * 1000) / 10,
    top_functions: finish(functions.values()),
    top_areas: finish(areas.values()),
  };
}

export function profileMarkdown(summary: ProfileSummary): string {
  const rows = (list: ProfileEntry[]) =>
    list.map((e) => `| ${e.self_pct}% | ${e.self_ms} | \`${e.name}\` | ${e.where} |`).join("\n");
  return [
    `Profile \`${summary.file}\`: ${summary.total_ms} ms sampled, main thread busy ${summary.busy_pct}%.`,
    "",
    "CPU by area, % of busy time: each sample goes to the package or folder of our code nearest on its stack " +
      "(so the Node and native work done for it counts with it); samples with none stay with Node's module.",
    "",
    "| self % | ms | area | |",
    "| ---: | ---: | --- | --- |",
    rows(summary.top_areas),
    "",
    "Top functions by self time (native and Node-internal ones with the nearest package or our code that called them):",
    "",
    "| self % | ms | function | where |",
    "| ---: | ---: | --- | --- |",
    rows(summary.top_functions),
    "",
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [file, flag, n] = process.argv.slice(2);
  if (!file) {
    process.stderr.write("usage: npx tsx bench/profile.ts <file.cpuprofile> [--top N]\n");
    process.exit(64);
  }
  process.stdout.write(profileMarkdown(summarizeProfile(file, flag === "--top" ? Number(n) : 25)));
}
