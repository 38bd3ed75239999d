import { SignJWT } from "jose";

/** Mints a merchant token signed with the configured HS256 secret (development and tests). */
export function mintToken(
  secret: Uint8Array,
  merchantId: string,
  options: { scopes?: string[]; expiresIn?: string; issuer?: string; audience?: string } = {},
): Promise<string> {
  let jwt = new SignJWT({ scope: (options.scopes ?? ["payments:read", "payments:write"]).join(" ") })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(merchantId)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "24h");
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(secret);
}
