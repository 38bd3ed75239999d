import { createHmac, timingSafeEqual } from "node:crypto";
import { WebhookRejected } from "./provider.ts";

/** Stripe's scheme, also used by the sandbox: header `t=<unix>,v1=<hex hmac-sha256 of "t.body">[,v1=…]`. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export function signPayload(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const signature = createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
  return `t=${timestamp},v1=${signature}`;
}

/**
 * Verifies a `t=…,v1=…` signature header in constant time. Several v1 values are allowed (secret rotation); the
 * timestamp must be within the tolerance so a captured request cannot be replayed later.
 */
export function verifySignature(
  secret: string,
  body: string,
  header: string | null | undefined,
  toleranceSeconds = DEFAULT_TOLERANCE_SECONDS,
  now = Math.floor(Date.now() / 1000),
): void {
  if (!header) throw new WebhookRejected("signature", "missing signature header");
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(",")) {
    const [key, value] = part.trim().split("=", 2);
    if (key === "t" && value && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    if (key === "v1" && value && /^[0-9a-f]{64}$/.test(value)) signatures.push(value);
  }
  if (timestamp === undefined || signatures.length === 0)
    throw new WebhookRejected("signature", "malformed signature header");
  const expected = createHmac("sha256", secret).update(`${timestamp}.${body}`).digest();
  const matches = signatures.some((s) => timingSafeEqual(Buffer.from(s, "hex"), expected));
  if (!matches) throw new WebhookRejected("signature", "signature does not match");
  if (Math.abs(now - timestamp) > toleranceSeconds)
    throw new WebhookRejected("stale", "signature timestamp outside tolerance");
}
