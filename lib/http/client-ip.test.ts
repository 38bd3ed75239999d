import type { Context } from "hono";
import { describe, expect, it } from "vitest";
import { clientIp } from "./client-ip.ts";

const request = (peer: string, forwardedFor?: string) =>
  ({
    env: { incoming: { socket: { remoteAddress: peer } } },
    req: { header: (name: string) => (name === "x-forwarded-for" ? forwardedFor : undefined) },
  }) as unknown as Context;

describe("clientIp", () => {
  it("uses the socket peer and ignores X-Forwarded-For from an untrusted peer", () => {
    expect(clientIp(request("203.0.113.9", "185.71.76.1"), [])).toBe("203.0.113.9");
    expect(clientIp(request("::ffff:203.0.113.9"), [])).toBe("203.0.113.9");
  });

  it("believes X-Forwarded-For only through trusted proxies, addresses or CIDR ranges", () => {
    const trusted = ["10.0.0.0/8", "192.168.1.7"];
    expect(clientIp(request("10.4.2.1", "185.71.76.1"), trusted)).toBe("185.71.76.1");
    expect(clientIp(request("192.168.1.7", "185.71.76.1, 10.1.1.1"), trusted)).toBe("185.71.76.1");
    // A client cannot smuggle an address in front of the chain: the nearest untrusted hop wins.
    expect(clientIp(request("10.4.2.1", "185.71.76.1, 198.51.100.4"), trusted)).toBe("198.51.100.4");
    expect(clientIp(request("172.16.0.1", "185.71.76.1"), trusted)).toBe("172.16.0.1");
  });
});
