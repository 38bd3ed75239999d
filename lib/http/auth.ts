import { createSecretKey } from "node:crypto";
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from "jose";
import type { Config } from "../config/index.ts";
import { ApiError } from "./errors.ts";
import type { Scope } from "./route.ts";

export interface Principal {
  merchantId: string;
  scopes: ReadonlySet<string>;
}

const INVALID_TOKEN = { "WWW-Authenticate": 'Bearer error="invalid_token"' };
const unauthenticated = (detail: string) =>
  new ApiError("unauthenticated", detail, { headers: INVALID_TOKEN });

// Tokens are short JSON documents; anything this large is an attack on the parser, not a credential.
const MAX_TOKEN_LENGTH = 8_192;

/**
 * Bearer JWT verification with jose. The key decides the algorithms: HS256 for a shared secret, the asymmetric
 * ones for a JWKS — so `alg: none` and HS/RS confusion are rejected by construction. Keys are prepared once.
 */
export function createAuthenticator(auth: Config["auth"]) {
  const options = {
    issuer: auth.issuer,
    audience: auth.audience,
    clockTolerance: 30,
    requiredClaims: ["exp", "sub"],
  };
  const verify = auth.jwksUrl
    ? (() => {
        const jwks = createRemoteJWKSet(new URL(auth.jwksUrl), {
          cooldownDuration: 30_000,
          cacheMaxAge: 600_000,
        });
        return (token: string) =>
          jwtVerify(token, jwks, { ...options, algorithms: ["RS256", "ES256", "EdDSA"] });
      })()
    : (() => {
        if (!auth.secret) throw new Error("JWT_SECRET or JWT_JWKS_URL is required");
        // A KeyObject made once: given raw bytes, jose would import the key again on every request.
        const secret = createSecretKey(auth.secret);
        return (token: string) => jwtVerify(token, secret, { ...options, algorithms: ["HS256"] });
      })();

  const verified = new VerifiedTokens();

  return async function authenticate(header: string | undefined): Promise<Principal> {
    if (!header) throw unauthenticated("Missing bearer token.");
    const match = /^Bearer ([A-Za-z0-9_\-.]+)$/.exec(header);
    if (!match?.[1] || match[1].length > MAX_TOKEN_LENGTH) throw unauthenticated("Malformed bearer token.");
    const token = match[1];
    const known = verified.get(token);
    if (known) return known;
    let payload: JWTPayload;
    try {
      ({ payload } = await verify(token));
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw unauthenticated("Token has expired.");
      if (error instanceof errors.JWKSNoMatchingKey) throw unauthenticated("Token signed by an unknown key.");
      throw unauthenticated("Invalid token.");
    }
    if (typeof payload.sub !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(payload.sub)) {
      throw unauthenticated("Token subject is not a merchant id.");
    }
    const principal = { merchantId: payload.sub, scopes: scopesOf(payload) };
    verified.set(token, principal, (payload.exp as number) * 1000);
    return principal;
  };
}

// A merchant's client sends the same token with every request until it expires; verifying its signature again
// each time was the largest CPU cost of a cached read. Only tokens that verified are kept, never past their own
// expiry and at most a minute (so a JWKS key rotation is honoured quickly), keyed by the exact token string.
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;

class VerifiedTokens {
  private readonly entries = new Map<string, { principal: Principal; until: number }>();

  get(token: string): Principal | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (entry.until <= Date.now()) {
      this.entries.delete(token);
      return undefined;
    }
    return entry.principal;
  }

  set(token: string, principal: Principal, expiresAtMs: number): void {
    if (this.entries.size >= VERIFIED_MAX) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(token, { principal, until: Math.min(expiresAtMs, Date.now() + VERIFIED_TTL_MS) });
  }
}

function scopesOf(payload: JWTPayload): Set<string> {
  const scopes = new Set<string>();
  if (typeof payload.scope === "string") for (const s of payload.scope.split(" ")) if (s) scopes.add(s);
  if (Array.isArray(payload.scp)) for (const s of payload.scp) if (typeof s === "string") scopes.add(s);
  return scopes;
}

export function requireScope(principal: Principal, scope: Scope): void {
  if (!principal.scopes.has(scope)) {
    throw new ApiError("insufficient_scope", `This request needs the ${scope} scope.`, {
      headers: { "WWW-Authenticate": `Bearer error="insufficient_scope", scope="${scope}"` },
    });
  }
}
