/**
 * A parser for the Prometheus text exposition format (version 0.0.4, what prom-client writes): families from
 * their # TYPE lines, samples with their labels unescaped. Strict: a line it does not understand is an error,
 * so a malformed /metrics fails the tests instead of being skipped.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help?: string;
  samples: Sample[];
}

export type Exposition = Map<string, Family>;

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;

export function parseExposition(text: string): Exposition {
  const families: Exposition = new Map();
  const familyOf = (sample: string): Family | undefined => {
    for (const suffix of ["", "_bucket", "_sum", "_count", "_total", "_created"]) {
      if (suffix && !sample.endsWith(suffix)) continue;
      const family = families.get(sample.slice(0, sample.length - suffix.length));
      if (family) return family;
    }
    return undefined;
  };
  for (const [i, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    if (line.startsWith("#")) {
      const [, keyword, name, ...rest] = line.split(" ");
      if (keyword === "TYPE" && name) {
        const family = families.get(name) ?? { name, type: "untyped", samples: [] };
        family.type = rest.join(" ");
        families.set(name, family);
      } else if (keyword === "HELP" && name) {
        const family = families.get(name) ?? { name, type: "untyped", samples: [] };
        family.help = rest.join(" ");
        families.set(name, family);
      }
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`line ${i + 1} is not a sample: ${line}`);
    const [, name = "", rawLabels, rawValue = ""] = match;
    const family = familyOf(name);
    if (!family) throw new Error(`line ${i + 1}: sample ${name} has no # TYPE`);
    family.samples.push({ name, labels: parseLabels(rawLabels ?? "", i + 1), value: parseValue(rawValue) });
  }
  return families;
}

function parseLabels(raw: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < raw.length) {
    const start = LABEL.lastIndex;
    const match = LABEL.exec(raw);
    if (!match || match.index !== start) throw new Error(`line ${line}: bad labels {${raw}}`);
    const [, key = "", value = ""] = match;
    if (key in labels) throw new Error(`line ${line}: label ${key} twice`);
    labels[key] = value.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    if (match[3] === "") break;
  }
  return labels;
}

function parseValue(raw: string): number {
  // Case-insensitive, as Prometheus reads them (Go's ParseFloat); prom-client writes NaN as "Nan".
  if (/^[+]?inf$/i.test(raw)) return Number.POSITIVE_INFINITY;
  if (/^-inf$/i.test(raw)) return Number.NEGATIVE_INFINITY;
  if (/^nan$/i.test(raw)) return Number.NaN;
  const value = Number(raw);
  if (Number.isNaN(value)) throw new Error(`bad sample value ${raw}`);
  return value;
}

/** Every sample name present, with histograms' _bucket/_sum/_count. */
export function sampleNames(exposition: Exposition): Set<string> {
  const names = new Set<string>();
  for (const family of exposition.values()) for (const s of family.samples) names.add(s.name);
  return names;
}

/** Sum of the samples of `name` whose labels include `labels`. */
export function sampleValue(
  exposition: Exposition,
  name: string,
  labels: Record<string, string> = {},
): number {
  let total = 0;
  for (const family of exposition.values()) {
    for (const s of family.samples) {
      if (s.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
  }
  return total;
}
