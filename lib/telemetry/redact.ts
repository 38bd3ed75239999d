import { maskPans } from "../payments/pan.ts";

/**
 * What must never reach a log line, whatever field or message it hides in: credentials (bearer tokens, JWTs,
 * provider API keys, passwords in URLs), card numbers (PCI DSS) and personal data (e-mail addresses, phone
 * numbers). Applied to every string a log line carries, including error messages and stacks, because the
 * dangerous values usually arrive inside text nobody thought of as sensitive (a driver's error quoting its
 * connection string, a provider's error echoing the request).
 */
const RULES: readonly [RegExp, string | ((match: string, ...groups: string[]) => string)][] = [
  // user:password@ in any URL (postgres://, redis://, https://).
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]*:[^/\s@]*@/gi, "$1[REDACTED]@"],
  [/\bBearer\s+[\w.~+/=-]+/gi, "Bearer [REDACTED]"],
  [/\beyJ[\w-]*\.[\w-]*\.[\w-]*/g, "[REDACTED_JWT]"],
  // Stripe-style keys and webhook secrets, YooKassa's live_/test_ secret keys.
  [/\b(?:sk|rk|pk)_(?:live|test)_\w+|\bwhsec_\w+|\b(?:live|test)_[A-Za-z0-9_-]{20,}/g, "[REDACTED_SECRET]"],
  // key=value and "key": "value" pairs whose key names a secret.
  [
    /\b([\w-]*(?:password|passwd|secret|token|api[_-]?key)|authorization|cookie)(["']?\s*[:=]\s*["']?)[^\s"'&,;]+/gi,
    "$1$2[REDACTED]",
  ],
  [/[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g, "[REDACTED_EMAIL]"],
  // 10–15 digits in phone notation (+7 912 345-67-89, (555) 123-4567), standing alone: not part of an id, a
  // UUID or a longer number; dates are left alone.
  [
    /(?<![\w+-])\+?\d(?:[ ()-]{0,2}\d){9,14}(?![\w-])/g,
    (m) => (/^\d{4}-\d{2}-\d{2}/.test(m) ? m : "[REDACTED_PHONE]"),
  ],
];

export function scrub(text: string): string {
  let out = maskPans(text);
  for (const [pattern, replacement] of RULES) out = out.replace(pattern, replacement as string);
  return out;
}

/** Field names whose value is a secret or personal data whatever it looks like, at any depth. */
const SENSITIVE_KEY =
  /^(authorization|cookie|set-cookie|password|passwd|secret|.*_secret|secret_?key|api_?key|token|access_token|refresh_token|id_token|email|phone|card_?number|pan|cvc|cvv)$/i;

/** A log object with every sensitive field replaced and every string scrubbed. Errors keep type, code and stack. */
export function scrubValues(value: unknown, depth = 0): unknown {
  if (depth > 8) return "[TRUNCATED]";
  if (typeof value === "string") return scrub(value);
  if (Array.isArray(value)) return value.map((v) => scrubValues(v, depth + 1));
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return {
      type: value.name,
      message: scrub(value.message),
      ...(typeof code === "string" || typeof code === "number" ? { code } : {}),
      stack: value.stack && scrub(value.stack),
    };
  }
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] =
        SENSITIVE_KEY.test(k) && v !== undefined && v !== null ? "[REDACTED]" : scrubValues(v, depth + 1);
    }
    return out;
  }
  return value;
}
