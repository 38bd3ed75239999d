import * as v from "valibot";
import { containsPan } from "../payments/pan.ts";
import { type FieldError, validationFailed } from "./errors.ts";

export function fieldErrors(issues: readonly v.BaseIssue<unknown>[], prefix = ""): FieldError[] {
  return issues.map((issue) => {
    const path = (issue.path ?? []).map((item) => String(item.key)).join(".");
    return { path: [prefix, path].filter(Boolean).join(".") || prefix || "body", message: issue.message };
  });
}

/** Validates with a schema; a failure becomes 400 validation_failed listing every field that was wrong. */
export function parseWith<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
  prefix = "",
): v.InferOutput<S> {
  const result = v.safeParse(schema, input, { abortEarly: false });
  if (!result.success) throw validationFailed(fieldErrors(result.issues, prefix));
  return result.output;
}

// Request bodies of this API nest two levels; anything far deeper is an attack on recursive code, not data.
export const MAX_JSON_DEPTH = 32;

/** True when a parsed JSON value nests deeper than the limit; iterative, so hostile depth cannot exhaust the stack. */
export function tooDeep(value: unknown, limit = MAX_JSON_DEPTH): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop() as [unknown, number];
    if (item === null || typeof item !== "object") continue;
    if (depth >= limit) return true;
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Finds string values that hold a card number (PCI DSS: a PAN must never reach storage or logs). */
// Our ids and payment-method tokens are random hex/word strings: a digit run inside one can pass the Luhn check
// by chance (about one id in 600), yet it is no card number. Only a whole-string match is exempt.
const OPAQUE_ID = /^(?:(?:ord|pay|re|evt)_[0-9a-f]{32}|pm_[A-Za-z0-9_]{1,100})$/;

export function findPans(value: unknown, path = ""): FieldError[] {
  if (typeof value === "string") {
    return !OPAQUE_ID.test(value) && containsPan(value)
      ? [{ path: path || "body", message: "must not contain a card number" }]
      : [];
  }
  if (Array.isArray(value))
    return value.flatMap((item, i) => findPans(item, path ? `${path}.${i}` : String(i)));
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([k, item]) => {
      const here = path ? `${path}.${k}` : k;
      return [
        ...(containsPan(k) ? [{ path: here, message: "must not contain a card number" }] : []),
        ...findPans(item, here),
      ];
    });
  }
  return [];
}
