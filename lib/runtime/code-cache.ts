import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { dirname } from "node:path";
import { Script } from "node:vm";

// The cache file starts with the SHA-256 of the bundle it was recorded from: V8 itself checks only the source's
// length (with its own version and flags), so a bundle changed in place would otherwise run its old code.
const DIGEST_BYTES = 32;

/**
 * A function bundle (dist/functions/<name>.cjs) run as `require` would run it, but compiled with V8's code cache
 * from `<bundle>.v8-cache` when one is there: V8 then skips parsing the 1.2 MB bundle and compiling the functions
 * the cache holds, which `npm run build` records from a start of the same bundle (writeCodeCache below). A cache
 * that does not fit (another bundle, Node version or V8 flags) is left aside and the bundle is compiled as usual:
 * a slower start, said in one warning line, never other code.
 */
export function runFunctionBundle(file: string): {
  script: Script;
  exports: Record<string, unknown>;
  digest: Buffer;
} {
  const source = readFileSync(file);
  const digest = digestOf(source);
  const cached = readCodeCache(file, digest);
  const script = new Script(Module.wrap(source.toString("utf8")), {
    filename: file,
    cachedData: cached.data,
  });
  const unused =
    cached.unused ?? (script.cachedDataRejected ? "refused by V8 (another Node version or V8 flags?)" : "");
  if (unused) {
    // Before the logger exists, so a line in its format.
    process.stderr.write(
      `${JSON.stringify({ level: 40, time: new Date().toISOString(), bundle: file, msg: `V8 code cache ${unused}: compiling the bundle from scratch` })}\n`,
    );
  }
  const module = { exports: {} as Record<string, unknown> };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  return { script, exports: module.exports, digest };
}

export function digestOf(source: Buffer): Buffer {
  return createHash("sha256").update(source).digest();
}

/** The V8 data of `<bundle>.v8-cache` if it was recorded from this very bundle; else why not (none: quietly). */
export function readCodeCache(file: string, digest: Buffer): { data?: Buffer; unused?: string } {
  const cacheFile = `${file}.v8-cache`;
  if (!existsSync(cacheFile)) return {};
  let cache: Buffer;
  try {
    cache = readFileSync(cacheFile);
  } catch (error) {
    return { unused: `unreadable (${(error as NodeJS.ErrnoException).code ?? error})` };
  }
  if (!cache.subarray(0, DIGEST_BYTES).equals(digest)) return { unused: "recorded from another bundle" };
  return { data: cache.subarray(DIGEST_BYTES) };
}

/**
 * The build's recording run (WRITE_CODE_CACHE=1): once the function serves (its bundle exports `started`), one
 * request compiles the request path too, then V8's code for everything run so far is written next to the bundle.
 */
export async function writeCodeCache(file: string): Promise<void> {
  const { script, exports, digest } = runFunctionBundle(file);
  await exports.started;
  await fetch(`http://127.0.0.1:${process.env.PORT}/health`).then((r) => r.arrayBuffer());
  writeFileSync(`${file}.v8-cache`, Buffer.concat([digest, script.createCachedData()]));
  process.exit(0);
}
