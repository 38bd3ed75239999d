import type { Context } from "hono";
import { answer } from "./answer.ts";
import { type ApiError, toProblem } from "./errors.ts";

/** Renders an ApiError as RFC 9457 problem+json with its headers (WWW-Authenticate, Retry-After, RateLimit-*). */
export function problemResponse(c: Context, error: ApiError): Response {
  const headers: Record<string, string> = {
    "Content-Type": "application/problem+json",
    ...(error.options.headers ?? {}),
  };
  if (error.options.retryAfter !== undefined) headers["Retry-After"] = String(error.options.retryAfter);
  const requestId = (c.get("requestId") as string | undefined) ?? "unknown";
  return answer(c, JSON.stringify(toProblem(error, requestId)), error.status, headers);
}
