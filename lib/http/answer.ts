import type { Context } from "hono";

/**
 * The headers every answer to a request carries: X-Request-Id from the start, RateLimit-* once a limiter has
 * counted the request (so a 401, a 404 or a validation problem announces the limit too, not only a success).
 * A handler that wants another header on its answer adds it here: headers set with c.header() are not carried.
 *
 * They stay a plain object handed to the Response, which @hono/node-server writes to the socket as it is. Headers
 * set with c.header() become a WHATWG Headers object instead, which validates every name and value, then is copied
 * into a new Headers for the response and back into an object for Node.
 */
export function answerHeaders(c: Context): Record<string, string> {
  let headers = c.get("answerHeaders" as never) as Record<string, string> | undefined;
  if (!headers) {
    headers = {};
    c.set("answerHeaders" as never, headers as never);
  }
  return headers;
}

/** An answer with the request's headers, then the given ones (which win: a 429's own RateLimit-* say more). */
export function answer(c: Context, body: string, status: number, headers: Record<string, string>): Response {
  const all = { ...answerHeaders(c), ...headers };
  c.set("answered" as never, all as never);
  return new Response(body, { status, headers: all });
}

/** The headers of the answer answer() built last for this request, if it built one. */
export const answeredHeaders = (c: Context): Record<string, string> | undefined =>
  c.get("answered" as never) as Record<string, string> | undefined;
