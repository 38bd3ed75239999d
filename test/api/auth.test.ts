import { exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestService, TEST_SECRET, type TestService } from "../support/harness.ts";

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(() => t.close());

const secret = new TextEncoder().encode(TEST_SECRET);
const now = () => Math.floor(Date.now() / 1000);
const sign = (claims: Record<string, unknown>, key: Uint8Array = secret) =>
  new SignJWT({
    scope: "payments:read payments:write",
    sub: "acct_test",
    iat: now(),
    exp: now() + 3600,
    ...claims,
  })
    .setProtectedHeader({ alg: "HS256" })
    .sign(key);

async function expect401(token: string | null, header?: string) {
  const res = await t.call("GET", "/v1/orders", {
    token: header === undefined ? token : null,
    headers: header === undefined ? {} : { Authorization: header },
  });
  expect(res.status).toBe(401);
  expect(res.body.code).toBe("unauthenticated");
  expect(res.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"');
  expect(res.headers.get("content-type")).toContain("application/problem+json");
}

describe("authentication", () => {
  it("rejects a missing or malformed Authorization header", async () => {
    await expect401(null);
    await expect401(null, "Basic abc");
    await expect401(null, "Bearer ");
    await expect401(null, `Bearer ${"a".repeat(10_000)}`);
  });

  it("rejects alg none", async () => {
    const unsigned = new UnsecuredJWT({ scope: "payments:read" })
      .setSubject("acct_test")
      .setExpirationTime("1h")
      .encode();
    await expect401(unsigned);
  });

  it("rejects a token signed with another key", async () => {
    await expect401(await sign({}, new TextEncoder().encode("another-secret-of-enough-length-000")));
  });

  it("rejects HS/RS confusion: a public key used as the HMAC secret", async () => {
    const { publicKey } = await generateKeyPair("RS256");
    const pem = await exportSPKI(publicKey);
    await expect401(await sign({}, new TextEncoder().encode(pem)));
  });

  it("rejects expired, not-yet-valid, missing-exp and subject-less tokens", async () => {
    await expect401(await sign({ exp: Math.floor(Date.now() / 1000) - 120 }));
    await expect401(await sign({ nbf: Math.floor(Date.now() / 1000) + 300 }));
    const noExp = await new SignJWT({ scope: "payments:read" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("acct_test")
      .sign(secret);
    await expect401(noExp);
    const noSub = await new SignJWT({ scope: "payments:read" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1h")
      .sign(secret);
    await expect401(noSub);
  });

  it("accepts nbf within the 30 s leeway", async () => {
    const res = await t.call("GET", "/v1/orders", {
      token: await sign({ nbf: Math.floor(Date.now() / 1000) + 10 }),
    });
    expect(res.status).toBe(200);
  });

  it("rejects a tampered payload", async () => {
    const token = await sign({});
    const [h, p, s] = token.split(".");
    const payload = JSON.parse(Buffer.from(p as string, "base64url").toString());
    payload.sub = "acct_other";
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${s}`;
    await expect401(forged);
  });

  it("checks iss and aud when configured", async () => {
    const strict = await startTestService({
      env: { JWT_ISSUER: "https://issuer.test", JWT_AUDIENCE: "payments" },
    });
    try {
      const good = await new SignJWT({ scope: "payments:read" })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("acct_test")
        .setIssuer("https://issuer.test")
        .setAudience("payments")
        .setExpirationTime("1h")
        .sign(secret);
      expect((await strict.call("GET", "/v1/orders", { token: good })).status).toBe(200);
      const wrongIss = await new SignJWT({ scope: "payments:read" })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("acct_test")
        .setIssuer("https://evil.test")
        .setAudience("payments")
        .setExpirationTime("1h")
        .sign(secret);
      expect((await strict.call("GET", "/v1/orders", { token: wrongIss })).status).toBe(401);
      const wrongAud = await new SignJWT({ scope: "payments:read" })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("acct_test")
        .setIssuer("https://issuer.test")
        .setAudience("other")
        .setExpirationTime("1h")
        .sign(secret);
      expect((await strict.call("GET", "/v1/orders", { token: wrongAud })).status).toBe(401);
    } finally {
      await strict.close();
    }
  });
});

describe("scopes", () => {
  it("needs payments:write for POST and payments:read for GET (scope or scp)", async () => {
    const readOnly = await t.token("acct_test", ["payments:read"]);
    const post = await t.call("POST", "/v1/orders", {
      token: readOnly,
      body: { amount: 1, currency: "USD" },
    });
    expect(post.status).toBe(403);
    expect(post.body.code).toBe("insufficient_scope");
    const writeOnly = await t.token("acct_test", ["payments:write"]);
    expect((await t.call("GET", "/v1/orders", { token: writeOnly })).status).toBe(403);
    const scp = await new SignJWT({ scp: ["payments:read"] })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("acct_test")
      .setExpirationTime("1h")
      .sign(secret);
    expect((await t.call("GET", "/v1/orders", { token: scp })).status).toBe(200);
  });
});

describe("every API route requires a token", () => {
  const routes = [
    ["POST", "/v1/orders"],
    ["POST", "/v1/payments"],
    ["POST", `/v1/payments/pay_${"0".repeat(32)}/confirm`],
    ["POST", `/v1/payments/pay_${"0".repeat(32)}/capture`],
    ["POST", `/v1/payments/pay_${"0".repeat(32)}/cancel`],
    ["POST", `/v1/orders/ord_${"0".repeat(32)}/cancel`],
    ["POST", "/v1/refunds"],
    ["GET", `/v1/orders/ord_${"0".repeat(32)}`],
    ["GET", "/v1/orders"],
    ["GET", `/v1/payments/pay_${"0".repeat(32)}`],
    ["GET", "/v1/payments"],
    ["GET", `/v1/refunds/re_${"0".repeat(32)}`],
  ] as const;
  it.each(routes)("%s %s", async (method, path) => {
    const res = await t.call(method, path, { token: null, body: method === "POST" ? {} : undefined });
    expect(res.status).toBe(401);
  });
});
