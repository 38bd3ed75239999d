import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runFunctionBundle } from "./code-cache.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "code-cache-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A cache as the build records it: the bundle's SHA-256, then V8's data. */
async function record(file: string): Promise<void> {
  const { script, digest } = runFunctionBundle(file);
  await writeFile(`${file}.v8-cache`, Buffer.concat([digest, script.createCachedData()]));
}

/** What runFunctionBundle wrote to stderr while `run` ran. */
function warnings(run: () => void): string {
  const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    run();
    return stderr.mock.calls.map((call) => String(call[0])).join("");
  } finally {
    stderr.mockRestore();
  }
}

describe("runFunctionBundle", () => {
  it("runs a bundle as require would, with its own require, and uses a cache recorded from it", async () => {
    const file = join(dir, "fn.cjs");
    await writeFile(
      file,
      'exports.sep = require("node:path").sep; exports.name = require("node:path").basename(__filename);',
    );
    expect(runFunctionBundle(file).exports).toEqual({ sep: "/", name: "fn.cjs" });
    await record(file);
    let second: ReturnType<typeof runFunctionBundle> | undefined;
    expect(warnings(() => (second = runFunctionBundle(file)))).toBe("");
    expect(second?.script.cachedDataRejected).toBe(false);
    expect(second?.exports).toEqual({ sep: "/", name: "fn.cjs" });
  });

  it("never runs a cache recorded from another bundle of the same length", async () => {
    const file = join(dir, "same-length.cjs");
    await writeFile(file, 'exports.said = "listening";');
    await record(file);
    // V8 alone would accept this cache (it checks the length) and run the old code.
    await writeFile(file, 'exports.said = "LISTENING";');
    let run: ReturnType<typeof runFunctionBundle> | undefined;
    expect(warnings(() => (run = runFunctionBundle(file)))).toContain("recorded from another bundle");
    expect(run?.exports).toEqual({ said: "LISTENING" });
  });

  it("compiles from scratch, and says so, when the cache does not fit or cannot be read", async () => {
    const foreign = join(dir, "foreign.cjs");
    await writeFile(foreign, "exports.ok = true;");
    await writeFile(`${foreign}.v8-cache`, Buffer.from("recorded by some other Node"));
    let run: ReturnType<typeof runFunctionBundle> | undefined;
    expect(warnings(() => (run = runFunctionBundle(foreign)))).toContain('"msg":"V8 code cache');
    expect(run?.exports).toEqual({ ok: true });

    const unreadable = join(dir, "unreadable.cjs");
    await writeFile(unreadable, "exports.ok = true;");
    await mkdir(`${unreadable}.v8-cache`);
    expect(warnings(() => (run = runFunctionBundle(unreadable)))).toContain("unreadable (EISDIR)");
    expect(run?.exports).toEqual({ ok: true });
  });
});
