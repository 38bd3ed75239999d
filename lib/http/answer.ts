import type { Context } from "hono";

/**
 * The headers every answer to a request carries: X-Request-Id from the start, the merchant's RateLimit-* once the
 * limiter has counted the request (so a 404 or a validation problem announces the limit too, not only a success).
 *
 * They stay a plain object handed to the Response, which @hono/node-server writes to the socket as it is. Headers
 * set with c.header() become a WHATWG Headers object instead, which validates every name and value, then is copied
 * into a new Headers for the response and back into an object for Node: about a tenth of a cached read's CPU.
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
  c.set("answered" as never, true as never);
  return new Response(body, { status, headers: { ...answerHeaders(c), ...headers } });
}

/** Whether the answer was built by answer() above, so it carries the request's headers already. */
export const answeredWithHeaders = (c: Context): boolean => c.get("answered" as never) === true;
