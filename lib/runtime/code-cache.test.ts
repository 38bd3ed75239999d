import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runFunctionBundle } from "./code-cache.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "code-cache-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("runFunctionBundle", () => {
  it("runs a bundle as require would, with its own require, and uses a cache recorded from it", async () => {
    const file = join(dir, "fn.cjs");
    await writeFile(
      file,
      'exports.sep = require("node:path").sep; exports.name = require("node:path").basename(__filename);',
    );
    const first = runFunctionBundle(file);
    expect(first.exports).toEqual({ sep: "/", name: "fn.cjs" });
    await writeFile(`${file}.v8-cache`, first.script.createCachedData());
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      const second = runFunctionBundle(file);
      expect(second.script.cachedDataRejected).toBe(false);
      expect(second.exports).toEqual({ sep: "/", name: "fn.cjs" });
      expect(stderr).not.toHaveBeenCalled();
    } finally {
      stderr.mockRestore();
    }
  });

  it("compiles from scratch, and says so, when the cache does not fit", async () => {
    const file = join(dir, "other.cjs");
    await writeFile(file, "exports.ok = true;");
    await writeFile(`${file}.v8-cache`, Buffer.from("recorded by some other Node"));
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      expect(runFunctionBundle(file).exports).toEqual({ ok: true });
      expect(String(stderr.mock.calls[0]?.[0])).toContain('"msg":"V8 code cache refused');
    } finally {
      stderr.mockRestore();
    }
  });
});
