import pino from "pino";
import { scrub, scrubValues } from "./redact.ts";

export type Logger = pino.Logger;
export { scrub };

/**
 * JSON logs, one object per line, with secrets, tokens, card numbers and personal data removed before they are
 * written (redact.ts): by field name at any depth, and by pattern inside every string, messages and error stacks
 * included. The level comes from LOG_LEVEL. Child-logger bindings are not scrubbed (pino applies no formatter to
 * them): bind only ids and names chosen by the code, never request data.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      // Belt and braces for the usual places; scrubValues below covers every depth.
      redact: {
        paths: [
          "authorization",
          "*.authorization",
          "headers.authorization",
          "req.headers.authorization",
          "*.cookie",
        ],
        censor: "[REDACTED]",
      },
      formatters: { log: (object) => scrubValues(object) as Record<string, unknown> },
      // scrubValues already turned errors into { type, message, code, stack }; pino's own serializer would
      // rename them "Object".
      serializers: { err: (err: unknown) => err },
      hooks: {
        logMethod(args, method) {
          // log.error(error): pino would take the unscrubbed error message as the line's msg.
          const [first, ...rest] = args as unknown[];
          const normalized =
            first instanceof Error && typeof rest[0] !== "string"
              ? [{ err: first }, first.message, ...rest]
              : args;
          method.apply(
            this,
            normalized.map((a) => (typeof a === "string" ? scrub(a) : a)) as Parameters<typeof method>,
          );
        },
      },
    },
    destination,
  );
}
