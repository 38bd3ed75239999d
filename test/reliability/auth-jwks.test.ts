import { createPrivateKey, createPublicKey } from "node:crypto";
import {
  exportJWK,
  exportPKCS8,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  type KeyObject,
  SignJWT,
  UnsecuredJWT,
} from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, sendJson, startLocalServer } from "../providers/support/http-server.ts";
import { startTestService, type TestService } from "../support/harness.ts";
import { rawRequest, serveApp } from "./support/servers.ts";

/**
 * Bearer tokens checked against a JWKS (JWT_JWKS_URL) served by a local HTTP server, the way an identity
 * provider publishes its keys: RS256, ES256 and EdDSA tokens of published keys are accepted; everything an attacker
 * can do with the token's header — another kid, another algorithm, the public key as an HMAC secret, `alg: none`,
 * a key of their own embedded or linked — is refused with 401, and never makes the service fetch anything from
 * the attacker or hammer the JWKS endpoint.
 */
type Signer = { kid: string; alg: "RS256" | "ES256" | "EdDSA"; privateKey: KeyObject; publicJwk: JWK };

let jwks: LocalServer;
let attacker: LocalServer;
let t: TestService;
let rsa: Signer;
let ec: Signer;
let ed: Signer;
let stranger: Signer;

async function signer(kid: string, alg: Signer["alg"]): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return {
    kid,
    alg,
    privateKey: privateKey as KeyObject,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" },
  };
}

const claims = (extra: JWTPayload = {}): JWTPayload => ({
  sub: "acct_jwks",
  scope: "payments:read payments:write",
  ...extra,
});

function sign(s: Signer, header: Record<string, unknown> = {}, extra: JWTPayload = {}) {
  return new SignJWT(claims(extra))
    .setProtectedHeader({ alg: s.alg, kid: s.kid, ...header })
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(s.privateKey);
}

beforeAll(async () => {
  [rsa, ec, ed, stranger] = await Promise.all([
    signer("rsa-1", "RS256"),
    signer("ec-1", "ES256"),
    signer("ed-1", "EdDSA"),
    signer("rsa-1", "RS256"), // same kid as the published key, another key
  ]);
  jwks = await startLocalServer((_req, res) =>
    sendJson(res, 200, { keys: [rsa.publicJwk, ec.publicJwk, ed.publicJwk] }),
  );
  attacker = await startLocalServer((_req, res) => sendJson(res, 200, { keys: [stranger.publicJwk] }));
  // No shared secret at all: only the JWKS can make a token valid.
  t = await startTestService({ env: { JWT_SECRET: "", JWT_JWKS_URL: `${jwks.url}/.well-known/jwks.json` } });
});
afterAll(async () => {
  await t?.close();
  await jwks?.close();
  await attacker?.close();
});

const get = (token: string) => t.call("GET", "/v1/orders", { token });

async function expect401(token: string) {
  const res = await get(token);
  expect(res.status).toBe(401);
  expect(res.body.code).toBe("unauthenticated");
  expect(res.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"');
}

describe("JWKS mode", () => {
  it("accepts RS256, ES256 and EdDSA tokens signed by published keys", async () => {
    for (const s of [rsa, ec, ed]) {
      const res = await get(await sign(s));
      expect(res.status, s.alg).toBe(200);
    }
  });

  it("refuses a kid that is not published, and does not refetch the JWKS for every such token", async () => {
    await get(await sign(rsa)); // keys cached
    const fetchesBefore = jwks.requests.length;
    const unknown = await signer("not-published", "RS256");
    for (let i = 0; i < 30; i++) await expect401(await sign({ ...unknown, kid: `guess-${i}` }));
    // jose refetches at most once per cooldown (30 s): an attacker cannot turn us into a JWKS load generator.
    expect(jwks.requests.length - fetchesBefore).toBeLessThanOrEqual(1);
  });

  it("refuses a token of another key under a published kid", async () => {
    await expect401(await sign(stranger));
  });

  it("refuses HS256 signed with the RSA public key as the secret (algorithm confusion)", async () => {
    const pem = await exportSPKI(createPublicKey({ key: rsa.publicJwk as never, format: "jwk" }));
    for (const secret of [pem, JSON.stringify(rsa.publicJwk), rsa.publicJwk.n as string]) {
      const token = await new SignJWT(claims())
        .setProtectedHeader({ alg: "HS256", kid: rsa.kid })
        .setExpirationTime("1h")
        .sign(new TextEncoder().encode(secret));
      await expect401(token);
    }
  });

  it("refuses alg none, with or without a published kid", async () => {
    const unsigned = new UnsecuredJWT(claims()).setExpirationTime("1h").encode();
    await expect401(unsigned);
    const [, payload] = unsigned.split(".");
    const header = Buffer.from(JSON.stringify({ alg: "none", kid: rsa.kid })).toString("base64url");
    await expect401(`${header}.${payload}.`);
  });

  it("refuses an algorithm the key was not made for (PS256 with the RS256 key)", async () => {
    // The same RSA key, as a Node key object: WebCrypto would not sign PSS with a key made for PKCS#1 v1.5.
    const key = createPrivateKey(await exportPKCS8(rsa.privateKey));
    const token = await new SignJWT(claims())
      .setProtectedHeader({ alg: "PS256", kid: rsa.kid })
      .setExpirationTime("1h")
      .sign(key);
    await expect401(token);
  });

  it("ignores keys the token brings itself (embedded jwk, jku, x5u): never fetched, never trusted", async () => {
    const before = attacker.requests.length;
    for (const header of [
      { jwk: stranger.publicJwk },
      { jku: `${attacker.url}/jwks.json` },
      { x5u: `${attacker.url}/cert.pem` },
    ]) {
      await expect401(await sign({ ...stranger, kid: "attacker" }, header));
    }
    expect(attacker.requests.length).toBe(before);
  });

  it("refuses an expired token and one without exp, even correctly signed", async () => {
    const expired = await new SignJWT(claims({ exp: Math.floor(Date.now() / 1000) - 120 }))
      .setProtectedHeader({ alg: "RS256", kid: rsa.kid })
      .sign(rsa.privateKey);
    await expect401(expired);
    const noExp = await new SignJWT(claims())
      .setProtectedHeader({ alg: "RS256", kid: rsa.kid })
      .sign(rsa.privateKey);
    await expect401(noExp);
  });

  it("refuses an oversized token without verifying it, and a header too large for the server", async () => {
    const big = await sign(rsa, {}, { padding: "x".repeat(9_000) });
    expect(big.length).toBeGreaterThan(8_192);
    await expect401(big);
    // Over a real socket Node refuses a header section beyond its limit (16 KiB) before any of our code runs.
    const live = await serveApp(t.app);
    try {
      const huge = await sign(rsa, {}, { padding: "x".repeat(40_000) });
      const res = await rawRequest(
        live.port,
        `GET /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${huge}\r\nConnection: close\r\n\r\n`,
      );
      expect(res.status).toBe(431);
    } finally {
      await live.close();
    }
  });

  it("answers 401, not 5xx, when the JWKS cannot be fetched", async () => {
    const down = await startTestService({
      env: { JWT_SECRET: "", JWT_JWKS_URL: `${attacker.url.replace(/:\d+$/, ":1")}/jwks.json` },
    });
    try {
      const res = await down.call("GET", "/v1/orders", { token: await sign(rsa) });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe("unauthenticated");
    } finally {
      await down.close();
    }
  });
});
