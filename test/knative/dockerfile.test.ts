// The Dockerfile builds what the manifests run: the checks a reviewer would otherwise do by eye.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "./manifests-lib.ts";

const dockerfile = readFileSync(path.join(repoRoot, "Dockerfile"), "utf8");
const instructions = dockerfile
  .replace(/\\\n/g, " ")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith("#"));
const stages = instructions.reduce<string[][]>((acc, line) => {
  if (/^FROM\s/i.test(line)) acc.push([line]);
  else acc.at(-1)?.push(line);
  return acc;
}, []);
const runtime = stages.at(-1) ?? [];

describe("Dockerfile", () => {
  it("builds in stages and ships only production dependencies", () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    expect(instructions.some((l) => /^RUN .*npm ci(?!.*--omit=dev)/.test(l))).toBe(true);
    expect(instructions.some((l) => /^RUN .*npm run build/.test(l))).toBe(true);
    expect(instructions.some((l) => /^RUN .*npm ci .*--omit=dev/.test(l))).toBe(true);
    // A maintained Node line (20 reached its end of life in April 2026), in the form scripts/image-node.sh reads
    // to give CI the same Node; a digest pin is welcome.
    expect(runtime[0]).toMatch(/^FROM node:22-slim(@sha256:[0-9a-f]{64})? AS runtime$/);
    expect(
      runtime.some((l) => /^RUN /.test(l)),
      "the runtime stage only copies",
    ).toBe(false);
  });

  it("builds the bundles (and records their V8 code cache) on the same Node image it runs them on", () => {
    // V8 refuses a code cache recorded by another Node version: the functions would then compile from scratch.
    const build = stages.find((stage) => stage.some((l) => /^RUN .*npm run build/.test(l))) ?? [];
    const baseOf = (stage: string[]): string | undefined => {
      const from = stage[0]?.split(/\s+/)[1];
      const parent = stages.find((s) => s[0]?.split(/\s+/)[3] === from);
      return parent ? baseOf(parent) : from;
    };
    expect(baseOf(build)).toBeDefined();
    expect(baseOf(build)).toBe(baseOf(runtime));
  });

  it("runs dist/main.js as a numeric non-root user in production mode on 8080", () => {
    const user = runtime.find((l) => l.startsWith("USER "))?.split(/\s+/)[1] ?? "";
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
    expect(runtime.join("\n")).toMatch(/NODE_ENV=production/);
    expect(runtime).toContain("EXPOSE 8080");
    expect(runtime.at(-1)).toBe('CMD ["node", "dist/main.js"]');
  });

  it("copies the migrations the service reads at run time, and they exist", () => {
    expect(runtime).toContain("COPY lib/db/migrations ./lib/db/migrations");
    expect(existsSync(path.join(repoRoot, "lib/db/migrations"))).toBe(true);
  });

  it("keeps what the build needs in the context and secrets out of it", () => {
    const ignored = readFileSync(path.join(repoRoot, ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    for (const needed of [
      "package.json",
      "package-lock.json",
      "lib",
      "functions",
      "scripts",
      "tsconfig.json",
    ])
      expect(ignored, needed).not.toContain(needed);
    expect(ignored).toEqual(expect.arrayContaining(["node_modules", ".git", ".env", "dist"]));
  });
});
