import type { Context } from "hono";

/**
 * The address of the client: the socket's peer, or — only when that peer is a trusted proxy — the nearest
 * untrusted address in X-Forwarded-For. Trusting the header from anyone would let clients pick their own address.
 */
export function clientIp(c: Context, trustedProxies: readonly string[]): string {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  const peer = normalize(incoming?.socket?.remoteAddress ?? "unknown");
  if (!trustedProxies.includes(peer)) return peer;
  const forwarded = (c.req.header("x-forwarded-for") ?? "")
    .split(",")
    .map((s) => normalize(s.trim()))
    .filter(Boolean);
  for (let i = forwarded.length - 1; i >= 0; i--) {
    const hop = forwarded[i] as string;
    if (!trustedProxies.includes(hop)) return hop;
  }
  return peer;
}

function normalize(address: string): string {
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

export function parseList(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}
