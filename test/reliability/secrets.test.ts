import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type Finding, findSecrets } from "./support/secret-scan.ts";

/**
 * No secret is committed: every file git tracks, or would track (untracked and not ignored), is scanned for
 * private keys, cloud and payment-provider credentials, tokens, passwords in connection strings, `.env` files, and
 * — outside tests — long high-entropy strings. And the image copies none (.dockerignore, Dockerfile).
 */
const ROOT = new URL("../../", import.meta.url).pathname;

function repositoryFiles(): string[] {
  return execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], {
    cwd: ROOT,
    encoding: "utf8",
  })
    .split("\0")
    .filter(Boolean);
}

describe("secrets in the repository", () => {
  it("none in any file git tracks or would track", () => {
    const findings: Finding[] = [];
    let scanned = 0;
    for (const file of repositoryFiles()) {
      const path = join(ROOT, file);
      let text: string;
      try {
        if (statSync(path).size > 2_000_000) continue;
        text = readFileSync(path, "utf8");
      } catch {
        continue; // deleted in the work tree, not committed yet
      }
      findings.push(...findSecrets(file, text.includes("\u0000") ? "" : text));
      scanned++;
    }
    expect(scanned).toBeGreaterThan(100);
    expect(findings.map((f) => `${f.file}: ${f.rule}: ${f.match.slice(0, 24)}…`)).toEqual([]);
  });

  it("the scanner finds each kind of secret (built here, so none is committed)", () => {
    const b64 = randomBytes(30).toString("base64");
    const samples: [string, string, string][] = [
      ["lib/x.ts", `const k = "-----BEGIN ${"RSA "}PRIVATE KEY-----\\nabc";`, "private key"],
      ["lib/x.ts", `id: ${"AKIA"}${"ABCDEFGHIJKLMNOP"}`, "AWS access key id"],
      ["lib/x.ts", `key = "${"sk_"}live_${randomBytes(12).toString("hex")}"`, "Stripe live key"],
      ["lib/x.ts", `t = "${"gh"}p_${"a1B2".repeat(9)}"`, "GitHub token"],
      [
        "docs.md",
        `DATABASE_URL=postgres://app:${randomBytes(6).toString("hex")}@db:5432/x`,
        "password in a URL",
      ],
      ["lib/x.ts", `const secret = "${b64}";`, "high-entropy string"],
      ["lib/x.ts", `const secret = "${randomBytes(24).toString("hex")}";`, "high-entropy string"],
      ["deploy/.env", "X=1", ".env file"],
      ["certs/server.key", "", "key file"],
    ];
    for (const [file, text, rule] of samples) {
      expect(
        findSecrets(file, text).map((f) => f.rule),
        `${rule} in ${text}`,
      ).toContain(rule);
    }
    // And stays quiet about what is not a secret.
    for (const [file, text] of [
      ["docs.md", "DATABASE_URL=postgres://payments:<password>@db:5432/payments"],
      ["docs.md", "postgres://postgres@127.0.0.1:5432/test"],
      [
        "lib/x.ts",
        "FROM node:20-slim@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      ],
      ["lib/x.ts", "confirm-00001-deployment-5d8f9-x2k4p and pay_0190a1b2c3d4e5f60718293a4b5c6d7e"],
      ["deploy/.env.example", "JWT_SECRET="],
    ] as const) {
      expect(findSecrets(file, text), text).toEqual([]);
    }
  });
});

describe("the image", () => {
  const dockerignore = readFileSync(join(ROOT, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));

  it("keeps local credentials out of the build context", () => {
    expect(dockerignore).toEqual(
      expect.arrayContaining([".env", ".env.*", "*.pem", "*.key", ".git", ".data"]),
    );
  });

  it("copies into the runtime stage only the build's output, production modules, package.json and migrations", () => {
    const lastFrom = dockerfile
      .map((l, i) => (l.startsWith("FROM ") ? i : -1))
      .reduce((a, b) => Math.max(a, b));
    const runtime = dockerfile.slice(lastFrom);
    const allowed = [
      /^COPY --from=\S+ \/app\/node_modules \.\/node_modules$/,
      /^COPY --from=\S+ \/app\/dist \.\/dist$/,
      /^COPY package\.json \.\/$/,
      /^COPY lib\/db\/migrations \.\/lib\/db\/migrations$/,
    ];
    for (const copy of runtime.filter((l) => l.startsWith("COPY ") || l.startsWith("ADD "))) {
      expect(
        allowed.some((pattern) => pattern.test(copy)),
        copy,
      ).toBe(true);
    }
    expect(runtime.join("\n")).not.toMatch(/\b(ARG|ENV)\s+\S*(SECRET|PASSWORD|KEY)\b/i);
  });
});
