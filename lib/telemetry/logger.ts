import pino from "pino";
import { maskPans } from "../payments/pan.ts";

export type Logger = pino.Logger;

// E-mail addresses and phone numbers are personal data; card numbers are masked by maskPans (Luhn-checked).
const EMAIL = /[\w.+-]+@[\w-]+\.[\w.-]+/g;
const PHONE = /\+\d[\d ()-]{8,}\d/g;

export function scrub(text: string): string {
  return maskPans(text).replace(EMAIL, "[REDACTED_EMAIL]").replace(PHONE, "[REDACTED_PHONE]");
}

/** JSON logs with secrets, tokens and personal data removed before they are written. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          "authorization",
          "*.authorization",
          "headers.authorization",
          "req.headers.authorization",
          "*.cookie",
          "*.password",
          "*.secret",
          "*.token",
          "*.secretKey",
          "*.apiKey",
          "*.email",
          "*.phone",
          "email",
          "phone",
          "password",
          "secret",
          "token",
        ],
        censor: "[REDACTED]",
      },
      formatters: {
        log: (object) => scrubValues(object) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          method.apply(
            this,
            args.map((a) => (typeof a === "string" ? scrub(a) : a)) as Parameters<typeof method>,
          );
        },
      },
    },
    destination,
  );
}

function scrubValues(value: unknown, depth = 0): unknown {
  if (depth > 6) return "[TRUNCATED]";
  if (typeof value === "string") return scrub(value);
  if (Array.isArray(value)) return value.map((v) => scrubValues(v, depth + 1));
  if (value && typeof value === "object" && !(value instanceof Error)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = scrubValues(v, depth + 1);
    return out;
  }
  if (value instanceof Error)
    return { type: value.name, message: scrub(value.message), stack: value.stack && scrub(value.stack) };
  return value;
}
