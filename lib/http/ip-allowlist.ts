import { BlockList, isIP } from "node:net";

/**
 * A set of addresses and CIDR ranges ("185.71.76.0/27,77.75.156.11,2a02:5180::/32"), matched with node's BlockList.
 * A malformed entry throws at start-up rather than silently matching nothing.
 */
export function ipAllowList(spec: string): (address: string) => boolean {
  const list = new BlockList();
  for (const entry of spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [address = "", prefix, ...rest] = entry.split("/");
    const family = isIP(address);
    const bits = prefix === undefined ? undefined : Number(prefix);
    if (
      family === 0 ||
      rest.length > 0 ||
      (bits !== undefined && (!/^\d{1,3}$/.test(prefix ?? "") || bits > (family === 4 ? 32 : 128)))
    ) {
      throw new Error(`"${entry}" is not an IP address or CIDR range`);
    }
    const type = family === 4 ? "ipv4" : "ipv6";
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, bits, type);
  }
  return (address) => {
    // An IPv4 peer on a dual-stack socket shows up as ::ffff:a.b.c.d.
    const plain = address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
    const family = isIP(plain);
    if (family === 0) return false;
    return list.check(plain, family === 4 ? "ipv4" : "ipv6");
  };
}
