import type { Context } from "hono";
import { type ApiError, toProblem } from "./errors.ts";

/** Renders an ApiError as RFC 9457 problem+json with its headers (WWW-Authenticate, Retry-After, RateLimit-*). */
export function problemResponse(c: Context, error: ApiError): Response {
  const headers: Record<string, string> = {
    "Content-Type": "application/problem+json",
    ...(error.options.headers ?? {}),
  };
  if (error.options.retryAfter !== undefined) headers["Retry-After"] = String(error.options.retryAfter);
  const requestId = (c.get("requestId") as string | undefined) ?? "unknown";
  return new Response(JSON.stringify(toProblem(error, requestId)), { status: error.status, headers });
}
