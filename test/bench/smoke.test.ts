import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * `npm run bench -- --smoke --embedded` end to end, as a child process: it must finish, exit 0 (no unexpected
 * error anywhere) and leave a JSON report with every section filled. Only that the numbers exist is checked;
 * how large they are depends on the machine, so it is never asserted.
 */
const TIMEOUT_MS = 240_000;
let outDir: string;
let exit: { code: number | null; output: string };

beforeAll(async () => {
  outDir = await mkdtemp(join(tmpdir(), "bench-smoke-"));
  exit = await new Promise((resolve) => {
    execFile(
      "npx",
      ["tsx", "bench/index.ts", "--smoke", "--embedded", "--out", outDir],
      { timeout: TIMEOUT_MS, maxBuffer: 10 * 1024 * 1024, killSignal: "SIGTERM" },
      (error, stdout, stderr) =>
        resolve({
          code: error ? ((error.code as number | undefined) ?? -1) : 0,
          output: `${stdout}\n${stderr}`,
        }),
    );
  });
}, TIMEOUT_MS + 10_000);

afterAll(async () => {
  await rm(outDir, { recursive: true, force: true });
});

const STEPS = [
  "create_order",
  "create_payment",
  "confirm",
  "list_orders",
  "get_order",
  "cancel_payment",
  "cancel_order",
  "health",
];

describe("bench --smoke --embedded", () => {
  it("completes with zero unexpected errors", () => {
    expect(exit.code, exit.output.slice(-4_000)).toBe(0);
  });

  it("writes latest.json with the mix, per step, and every reference", async () => {
    const results = JSON.parse(await readFile(join(outDir, "latest.json"), "utf8"));
    expect(results).toMatchObject({ mode: "smoke", ok: true, unexpected_errors: 0 });
    expect(results.machine).toEqual(
      expect.objectContaining({ nproc: expect.any(Number), node: process.version }),
    );
    expect(results.setup.cache).toMatch(/memory/);

    const mix = results.mix;
    expect(mix.users).toBe(10);
    expect(mix.total.requests).toBeGreaterThan(0);
    expect(mix.total).toEqual(
      expect.objectContaining({
        requests_per_second: expect.any(Number),
        p50_ms: expect.any(Number),
        p95_ms: expect.any(Number),
        p99_ms: expect.any(Number),
        errors: 0,
      }),
    );
    expect(
      Object.keys(mix.scenarios).every((s) =>
        ["payment_flow", "status_checks", "cancellations", "health"].includes(s),
      ),
    ).toBe(true);
    expect(Object.keys(mix.steps).length).toBeGreaterThan(0);
    expect(Object.keys(mix.steps).every((s) => STEPS.includes(s))).toBe(true);
    expect(mix.usage.server_cores).toEqual(expect.any(Number));
    expect(mix.usage.server_rss_mib_max).toBeGreaterThan(0);

    const { http, confirm, runtimes } = results.references;
    for (const run of [http.bare_node_http, http.health, http.get_payment_cache_hit]) {
      expect(run.requests_per_second).toBeGreaterThan(0);
      expect(run.errors).toBe(0);
    }
    expect(http.get_payment_vs_bare.ratio).toBeGreaterThan(0);
    expect(http.get_payment_cache_hit.cache_hit_ratio).toBeGreaterThan(0.5);
    expect(confirm.service.errors).toBe(0);
    expect(confirm.pgbench_confirm).toBeNull(); // no PostgreSQL server with --embedded
    expect(confirm.confirm_only).toBeNull(); // its payments are written into PostgreSQL beforehand
    expect(runtimes.functions_framework.requests_per_second).toBeGreaterThan(0);
    expect(runtimes.fast_node_server.requests_per_second).toBeGreaterThan(0);
    expect(results.skipped.join(" ")).toMatch(/pgbench/);
  });

  it("writes latest.md with the tables", async () => {
    const md = await readFile(join(outDir, "latest.md"), "utf8");
    expect(md).toContain("## The seed's mix");
    expect(md).toContain("| **all requests** |");
    expect(md).toContain("vs bare node:http");
    expect(md).toContain("functions-framework vs @hono/node-server");
  });
});
