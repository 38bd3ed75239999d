import { randomUUID } from "node:crypto";

// Printable, header-safe, and short: anything else (CRLF, spaces, quotes) is replaced by a fresh id.
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdFrom(header: string | undefined): string {
  return header && SAFE_REQUEST_ID.test(header) ? header : `req_${randomUUID().replaceAll("-", "")}`;
}

// version-traceid-parentid-flags, lower-case hex, all-zero ids invalid (W3C Trace Context).
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

export function validTraceparent(header: string | undefined): string | undefined {
  return header && TRACEPARENT.test(header) ? header : undefined;
}
