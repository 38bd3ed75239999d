/**
 * PromQL inspection with Prometheus' own lezer grammar (the one its web UI uses), so the
 * checks see selectors the way Prometheus does: a metric name inside a string, a label
 * called like a metric, or a function name are never mistaken for a metric reference.
 */
import {
  AggregateExpr,
  AggregateModifier,
  By,
  EqlRegex,
  EqlSingle,
  GroupingLabels,
  Identifier,
  LabelMatchers,
  LabelName,
  MatchOp,
  Neq,
  NeqRegex,
  ParenExpr,
  parser,
  QuotedLabelMatcher,
  QuotedLabelName,
  StringLiteral,
  UnquotedLabelMatcher,
  VectorSelector,
} from "@prometheus-io/lezer-promql";

type Tree = ReturnType<typeof parser.parse>;
type SyntaxNode = Tree["topNode"];

export type MatchOperator = "=" | "!=" | "=~" | "!~";

export interface LabelMatcher {
  readonly label: string;
  readonly op: MatchOperator;
  readonly value: string;
}

export interface Selector {
  /** The metric name, or undefined for a selector such as {job="x"} that names none. */
  readonly metric: string | undefined;
  readonly matchers: readonly LabelMatcher[];
  /** The selector as written, for error messages. */
  readonly text: string;
}

export interface SyntaxError {
  readonly from: number;
  readonly to: number;
  /** The input around the error, for error messages. */
  readonly near: string;
}

export interface InspectedQuery {
  readonly errors: readonly SyntaxError[];
  readonly selectors: readonly Selector[];
}

/**
 * Grafana replaces these before the query reaches Prometheus; outside a string literal
 * they are not PromQL, so they get a representative value here.
 */
const GRAFANA_INTERVALS: Readonly<Record<string, string>> = {
  $__rate_interval: "5m",
  $__interval: "1m",
  $__range: "1h",
};

export function substituteGrafanaVariables(expr: string): string {
  let out = expr;
  for (const [variable, value] of Object.entries(GRAFANA_INTERVALS)) {
    out = out.replaceAll(`\${${variable.slice(1)}}`, value).replaceAll(variable, value);
  }
  return out;
}

/** PromQL strings are Go-style; double-quoted ones decode like JSON for what queries use. */
function unquote(literal: string): string {
  if (literal.startsWith('"')) return JSON.parse(literal) as string;
  return literal.slice(1, -1);
}

function matchOperator(node: SyntaxNode): MatchOperator {
  const op = node.firstChild;
  switch (op?.type.id) {
    case EqlSingle:
      return "=";
    case Neq:
      return "!=";
    case EqlRegex:
      return "=~";
    case NeqRegex:
      return "!~";
    default:
      throw new Error(`unknown label match operator ${op?.name ?? "(none)"}`);
  }
}

function readMatchers(selector: SyntaxNode, source: string): LabelMatcher[] {
  const list = selector.getChild(LabelMatchers);
  if (list === null) return [];
  const matchers: LabelMatcher[] = [];
  for (let child = list.firstChild; child !== null; child = child.nextSibling) {
    // Prometheus 3 syntax: {"metric.name", …} names the metric with a bare quoted string.
    if (child.type.id === QuotedLabelName) {
      matchers.push({ label: "__name__", op: "=", value: unquote(source.slice(child.from, child.to)) });
      continue;
    }
    if (child.type.id !== UnquotedLabelMatcher && child.type.id !== QuotedLabelMatcher) continue;
    const nameNode = child.getChild(LabelName) ?? child.getChild(QuotedLabelName);
    const opNode = child.getChild(MatchOp);
    // The value is the matcher's last StringLiteral (a quoted label name is the first).
    const valueNodes = child.getChildren(StringLiteral);
    const valueNode = valueNodes[valueNodes.length - 1];
    if (nameNode === null || opNode === null || valueNode === undefined) continue;
    const rawName = source.slice(nameNode.from, nameNode.to);
    matchers.push({
      label: nameNode.type.id === QuotedLabelName ? unquote(rawName) : rawName,
      op: matchOperator(opNode),
      value: unquote(source.slice(valueNode.from, valueNode.to)),
    });
  }
  return matchers;
}

/** Parses one PromQL expression; reports syntax errors and every vector selector in it. */
export function inspectPromQL(expr: string): InspectedQuery {
  const source = substituteGrafanaVariables(expr);
  const tree = parser.parse(source);
  const errors: SyntaxError[] = [];
  const selectors: Selector[] = [];

  tree.iterate({
    enter(ref) {
      if (ref.type.isError) {
        errors.push({
          from: ref.from,
          to: ref.to,
          near: source.slice(Math.max(0, ref.from - 20), ref.to + 20),
        });
        return;
      }
      if (ref.type.id !== VectorSelector) return;
      const node = ref.node;
      const identifier = node.getChild(Identifier);
      const matchers = readMatchers(node, source);
      // {__name__="x"} names a metric too; a regex on __name__ names none for certain.
      const byName = matchers.find((m) => m.label === "__name__" && m.op === "=");
      selectors.push({
        metric: identifier !== null ? source.slice(identifier.from, identifier.to) : byName?.value,
        matchers: matchers.filter((m) => m.label !== "__name__"),
        text: source.slice(node.from, node.to),
      });
      return false;
    },
  });

  return { errors, selectors };
}

/**
 * The labels an expression's result is known to carry when the whole expression is one
 * aggregation, as recording rules usually are: its `by (…)` list, or none at all.
 * Undefined when that cannot be told without evaluating it (`without`, binary
 * operators, functions).
 */
export function outputLabels(expr: string): string[] | undefined {
  const source = substituteGrafanaVariables(expr);
  let node: SyntaxNode | null = parser.parse(source).topNode.firstChild;
  // "Expr" is the grammar's group of all expression nodes.
  while (node?.type.id === ParenExpr) node = node.getChild("Expr");
  if (node?.type.id !== AggregateExpr) return undefined;
  const modifier = node.getChild(AggregateModifier);
  if (modifier === null) return []; // sum(x): every label aggregated away
  if (modifier.getChild(By) === null) return undefined;
  const grouping = modifier.getChild(GroupingLabels);
  return (grouping?.getChildren(LabelName) ?? []).map((label) => source.slice(label.from, label.to));
}
