/**
 * Every query the alerts and the dashboard run must parse, and must only read metrics the
 * service exports (or recording rules defined next to the alerts). A misspelt metric or
 * label in PromQL is not an error in Prometheus or Grafana: it is an empty panel or an
 * alert that can never fire, which is why it is checked here.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { allowedLabels, contractFor, EXPORTED_METRICS } from "./exported-metrics.ts";
import { inspectPromQL, outputLabels, type Selector } from "./promql.ts";

const read = (path: string): string => readFileSync(fileURLToPath(new URL(path, import.meta.url)), "utf8");

// --- the rules file ----------------------------------------------------------------

interface RecordingRule {
  record: string;
  expr: string;
}
interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
type Rule = RecordingRule | AlertingRule;
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

const ruleFile = parseYaml(read("../../observability/prometheus-rules.yaml")) as RuleFile;
const rules = ruleFile.groups.flatMap((group) => group.rules);
const recordingRules = rules.filter((rule): rule is RecordingRule => "record" in rule);
const alertingRules = rules.filter((rule): rule is AlertingRule => "alert" in rule);
const RECORDED = new Set(recordingRules.map((rule) => rule.record));

/** What a selector on a series may match: its label names (undefined: unknown) and closed value sets. */
interface LabelSchema {
  labels: readonly string[] | undefined;
  values: Readonly<Record<string, readonly string[]>>;
}

function exportedSchema(series: string): LabelSchema {
  return { labels: allowedLabels(series), values: contractFor(series)?.values ?? {} };
}

/**
 * Recording rules carry the labels of their top-level `by (…)`, and those labels keep the
 * values of the series they were read from: namespace_provider_status:payments:rate5m has
 * the `status` values of payments_total. Rules are defined before use in the file.
 */
const recordedSchemas = new Map<string, LabelSchema>();
for (const rule of recordingRules) {
  const labels = outputLabels(rule.expr);
  const values: Record<string, string[]> = {};
  for (const { metric } of inspectPromQL(rule.expr).selectors) {
    if (metric === undefined) continue;
    const source = recordedSchemas.get(metric) ?? exportedSchema(metric);
    for (const [label, allowed] of Object.entries(source.values)) {
      if (labels === undefined || labels.includes(label))
        values[label] = [...(values[label] ?? []), ...allowed];
    }
  }
  recordedSchemas.set(rule.record, { labels, values });
}

// --- the dashboard -----------------------------------------------------------------

interface DataSourceRef {
  type?: string;
  uid?: string;
}
interface Target {
  refId: string;
  expr?: string;
  datasource?: DataSourceRef;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: DataSourceRef;
  targets?: Target[];
  panels?: Panel[];
}
interface TemplateVariable {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: DataSourceRef;
}
interface Dashboard {
  schemaVersion: number;
  __inputs?: { name: string; type: string; pluginId: string }[];
  templating: { list: TemplateVariable[] };
  panels: Panel[];
}

const dashboard = JSON.parse(read("../../observability/grafana-dashboard.json")) as Dashboard;
// Rows can hold collapsed panels; include them.
const allPanels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
const queryPanels = allPanels.filter((panel) => panel.type !== "row");
const dashboardQueries = queryPanels.flatMap((panel) =>
  (panel.targets ?? []).map((target) => ({
    where: `${panel.title} / ${target.refId}`,
    expr: target.expr ?? "",
  })),
);

// --- shared checks -----------------------------------------------------------------

interface Query {
  where: string;
  expr: string;
}

const ruleQueries: Query[] = rules.map((rule) => ({
  where: "record" in rule ? `record ${rule.record}` : `alert ${rule.alert}`,
  expr: rule.expr,
}));

/** Problems with one selector: unknown metric, unknown label, or a label value never emitted. */
function selectorProblems(selector: Selector): string[] {
  const { metric } = selector;
  if (metric === undefined) return [`${selector.text}: selector names no metric`];
  const schema =
    recordedSchemas.get(metric) ?? (EXPORTED_METRICS.includes(metric) ? exportedSchema(metric) : undefined);
  if (schema === undefined) return [`${metric}: not exported by the service nor recorded`];

  const problems: string[] = [];
  for (const matcher of selector.matchers) {
    if (schema.labels !== undefined && !schema.labels.includes(matcher.label)) {
      problems.push(`${selector.text}: ${metric} has no label "${matcher.label}"`);
      continue;
    }
    const allowed = schema.values[matcher.label];
    // Grafana variables are filled in at query time; open labels take any value.
    if (allowed === undefined || matcher.value.includes("$")) continue;
    // Plain alternations (a|b|c) can be checked value by value; other regexes cannot.
    const literals =
      matcher.op === "=" || matcher.op === "!="
        ? [matcher.value]
        : /^[\w]+(\|[\w]+)*$/.test(matcher.value)
          ? matcher.value.split("|")
          : [];
    for (const literal of literals) {
      if (!allowed.includes(literal)) {
        problems.push(
          `${selector.text}: "${literal}" is not a value of ${matcher.label} (${allowed.join(", ")})`,
        );
      }
    }
  }
  return problems;
}

function checkQuery(query: Query): void {
  const { errors, selectors } = inspectPromQL(query.expr);
  expect(errors, `syntax errors in ${query.where}: ${JSON.stringify(errors)}`).toEqual([]);
  expect(selectors.length, `${query.where} reads no metric`).toBeGreaterThan(0);
  expect(selectors.flatMap(selectorProblems), query.where).toEqual([]);
}

// --- tests -------------------------------------------------------------------------

describe("the PromQL inspector", () => {
  // Guards the guards: if the walker stopped seeing selectors or errors, every check
  // below would pass vacuously.
  it("finds metrics inside functions, aggregations, ranges and binary operators", () => {
    const { errors, selectors } = inspectPromQL(
      'sum by (provider) (rate(payments_total{status="failed"}[$__rate_interval])) / on (provider) foo:bar:rate5m',
    );
    expect(errors).toEqual([]);
    expect(selectors.map((s) => s.metric)).toEqual(["payments_total", "foo:bar:rate5m"]);
    expect(selectors[0]?.matchers).toEqual([{ label: "status", op: "=", value: "failed" }]);
  });

  it("does not take strings, label names or function names for metrics", () => {
    const { selectors } = inspectPromQL('label_replace(up, "payments_total", "x", "rate", ".*")');
    expect(selectors.map((s) => s.metric)).toEqual(["up"]);
  });

  it("reports syntax errors", () => {
    expect(inspectPromQL("rate(payments_total[5m]").errors).not.toEqual([]);
    expect(inspectPromQL("sum by (provider (payments_total)").errors).not.toEqual([]);
  });

  it("flags unknown metrics, unknown labels and impossible label values", () => {
    const problems = (expr: string) => inspectPromQL(expr).selectors.flatMap(selectorProblems);
    expect(problems("payment_total")).toHaveLength(1);
    expect(problems('payments_total{outcome="failed"}')).toHaveLength(1);
    expect(problems('payments_total{status=~"succeeded|declined"}')).toHaveLength(1);
    expect(problems('payment_duration_seconds_bucket{le="1",operation="confirm"}')).toEqual([]);
  });

  it("carries label names and values through recording rules", () => {
    const problems = (expr: string) => inspectPromQL(expr).selectors.flatMap(selectorProblems);
    expect(problems('namespace_provider_status:payments:rate5m{status="cancelled"}')).toHaveLength(1);
    expect(problems('namespace_provider_status:payments:rate5m{currency="USD"}')).toHaveLength(1);
    expect(problems('namespace_provider_status:payments:rate5m{status="canceled"}')).toEqual([]);
  });
});

describe("prometheus-rules.yaml", () => {
  it("defines alerts and recording rules", () => {
    expect(alertingRules.length).toBeGreaterThan(0);
    expect(recordingRules.length).toBeGreaterThan(0);
  });

  it.each(ruleQueries)("$where parses and reads only exported metrics", (query) => {
    checkQuery(query);
  });

  it("names recording rules level:metric:operations, so they never collide with exported metrics", () => {
    for (const { record } of recordingRules) {
      expect(record.split(":"), record).toHaveLength(3);
      expect(EXPORTED_METRICS, record).not.toContain(record);
    }
    expect(RECORDED.size, "duplicate recording rule").toBe(recordingRules.length);
  });

  it("uses every recording rule somewhere", () => {
    const read = new Set(
      [...ruleQueries, ...dashboardQueries].flatMap((q) =>
        inspectPromQL(q.expr).selectors.map((s) => s.metric),
      ),
    );
    expect([...RECORDED].filter((name) => !read.has(name))).toEqual([]);
  });

  it("gives alert names once", () => {
    const names = alertingRules.map((rule) => rule.alert);
    expect(new Set(names).size).toBe(names.length);
  });
});

describe("alerts", () => {
  const runbook = read("../../observability/RUNBOOK.md");
  const RUNBOOK_URL =
    "https://github.com/payment-service/payment-service/blob/main/observability/RUNBOOK.md#";

  /** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
  const anchor = (heading: string): string =>
    heading
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");

  // Headings outside fenced code blocks (a `# comment` in a bash block is not one).
  const anchors = new Set<string>();
  let inFence = false;
  for (const line of runbook.split("\n")) {
    if (line.startsWith("```")) inFence = !inFence;
    const heading = /^#{1,6}\s+(.+)$/.exec(line);
    if (!inFence && heading?.[1] !== undefined) anchors.add(anchor(heading[1]));
  }

  it.each(alertingRules)("$alert has a severity, a summary, a description and a runbook section", (rule) => {
    expect(["critical", "warning"]).toContain(rule.labels?.severity);
    expect(rule.annotations?.summary?.trim()).toBeTruthy();
    expect(rule.annotations?.description?.trim()).toBeTruthy();
    // The description carries the numbers of this firing, not only the summary's text.
    expect(rule.annotations?.description).toMatch(/\{\{\s*(\$value|\$labels|printf)/);

    const url = rule.annotations?.runbook_url ?? "";
    expect(url.startsWith(RUNBOOK_URL), url).toBe(true);
    const section = url.slice(RUNBOOK_URL.length);
    expect([...anchors], `RUNBOOK.md has no heading for #${section}`).toContain(section);
  });

  it("names only dashboard panels that exist", () => {
    const titles = new Set(allPanels.map((panel) => panel.title));
    // Panel names are the runbook's only emphasis (_Panel name_); code is left out first.
    const prose = runbook.replace(/```[\s\S]*?```/g, "").replace(/`[^`]*`/g, "");
    const named = [...prose.matchAll(/(?<!\w)_([^_]+)_(?!\w)/g)].map((m) =>
      (m[1] ?? "").replace(/\s+/g, " "),
    );
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((name) => !titles.has(name))).toEqual([]);
  });

  it("has a firing and a silent promtool test for every alert", () => {
    interface AlertTest {
      alertname: string;
      exp_alerts?: unknown[];
    }
    const testFile = parseYaml(read("../../observability/prometheus-rules.test.yaml")) as {
      tests: { alert_rule_test?: AlertTest[] }[];
    };
    const alertTests = testFile.tests.flatMap((test) => test.alert_rule_test ?? []);
    for (const { alert } of alertingRules) {
      const mine = alertTests.filter((test) => test.alertname === alert);
      expect(
        mine.some((test) => (test.exp_alerts ?? []).length > 0),
        `${alert} never fires in a test`,
      ).toBe(true);
      expect(
        mine.some((test) => (test.exp_alerts ?? []).length === 0),
        `${alert} never stays silent in a test`,
      ).toBe(true);
    }
  });
});

describe("grafana-dashboard.json", () => {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variable syntax, meant literally
  const DATASOURCE = "${datasource}";

  it("targets a current Grafana", () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
  });

  it("has a Prometheus data source variable and an import input for it", () => {
    const variable = dashboard.templating.list.find((v) => v.name === "datasource");
    expect(variable?.type).toBe("datasource");
    expect(variable?.query).toBe("prometheus");
    expect(
      dashboard.__inputs?.some((input) => input.type === "datasource" && input.pluginId === "prometheus"),
    ).toBe(true);
  });

  it("queries through the data source variable on every panel, target and variable", () => {
    expect(queryPanels.length).toBeGreaterThan(0);
    for (const panel of queryPanels) {
      expect(panel.datasource, panel.title).toEqual({ type: "prometheus", uid: DATASOURCE });
      expect(panel.targets?.length, `${panel.title} has no query`).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        expect(target.datasource, `${panel.title} / ${target.refId}`).toEqual({
          type: "prometheus",
          uid: DATASOURCE,
        });
      }
    }
    for (const variable of dashboard.templating.list.filter((v) => v.type === "query")) {
      expect(variable.datasource, variable.name).toEqual({ type: "prometheus", uid: DATASOURCE });
    }
  });

  it("uses only timeseries and stat panels, with unique ids", () => {
    expect(new Set(queryPanels.map((p) => p.type))).toEqual(new Set(["timeseries", "stat"]));
    const ids = allPanels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it.each(dashboardQueries)("$where parses and reads only exported metrics", (query) => {
    checkQuery(query);
  });

  it("fills its variables from exported metrics", () => {
    for (const variable of dashboard.templating.list.filter((v) => v.type === "query")) {
      const query = typeof variable.query === "string" ? variable.query : (variable.query?.query ?? "");
      // Grafana's label_values(<selector>, <label>) wraps a PromQL selector.
      const inner = /^label_values\((.*),\s*\w+\)$/.exec(query)?.[1];
      expect(inner, `${variable.name}: unexpected query ${query}`).toBeDefined();
      checkQuery({ where: `variable ${variable.name}`, expr: inner ?? "" });
    }
  });
});
