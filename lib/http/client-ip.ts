import type { Context } from "hono";
import { ipAllowList } from "./ip-allowlist.ts";

/** Trusted proxies: addresses and CIDR ranges (TRUSTED_PROXIES), or a ready matcher. */
export type TrustedProxies = readonly string[] | ((address: string) => boolean);

/**
 * The address of the client: the socket's peer, or — only when that peer is a trusted proxy — the nearest
 * untrusted address in X-Forwarded-For. Trusting the header from anyone would let clients pick their own address.
 */
export function clientIp(c: Context, trustedProxies: TrustedProxies): string {
  const trusted = typeof trustedProxies === "function" ? trustedProxies : matcherOf(trustedProxies);
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  const peer = normalize(incoming?.socket?.remoteAddress ?? "unknown");
  if (!trusted(peer)) return peer;
  const forwarded = (c.req.header("x-forwarded-for") ?? "")
    .split(",")
    .map((s) => normalize(s.trim()))
    .filter(Boolean);
  for (let i = forwarded.length - 1; i >= 0; i--) {
    const hop = forwarded[i] as string;
    if (!trusted(hop)) return hop;
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

const matchers = new WeakMap<readonly string[], (address: string) => boolean>();

/** Compiled once per list: CIDR ranges (a Knative cluster's proxies) match as well as single addresses. */
function matcherOf(list: readonly string[]): (address: string) => boolean {
  let matcher = matchers.get(list);
  if (!matcher) {
    matcher = list.length === 0 ? () => false : ipAllowList(list.join(","));
    matchers.set(list, matcher);
  }
  return matcher;
}
