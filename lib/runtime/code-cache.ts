import { existsSync, readFileSync, writeFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { dirname } from "node:path";
import { Script } from "node:vm";

/**
 * A function bundle (dist/functions/<name>.cjs) run as `require` would run it, but compiled with V8's code cache
 * from `<bundle>.v8-cache` when one is there: V8 then skips parsing the 1.2 MB bundle and compiling the functions
 * the cache holds, which `npm run build` records from a start of the same bundle (writeCodeCache below). A cache
 * made by another Node or V8 version is refused by V8 itself (`cachedDataRejected`) and the bundle is compiled as
 * usual: slower, never wrong.
 */
export function runFunctionBundle(file: string): { script: Script; exports: Record<string, unknown> } {
  const cacheFile = `${file}.v8-cache`;
  const script = new Script(Module.wrap(readFileSync(file, "utf8")), {
    filename: file,
    cachedData: existsSync(cacheFile) ? readFileSync(cacheFile) : undefined,
  });
  if (script.cachedDataRejected) {
    // Before the logger exists, so a line in its format: a refused cache is a slower start worth knowing about
    // (the build's Node and the image's differ).
    process.stderr.write(
      `${JSON.stringify({ level: 40, time: new Date().toISOString(), bundle: file, msg: "V8 code cache refused (recorded by another Node?): compiling the bundle from scratch" })}\n`,
    );
  }
  const module = { exports: {} as Record<string, unknown> };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  return { script, exports: module.exports };
}

/**
 * The build's recording run (WRITE_CODE_CACHE=1): once the function serves (its bundle exports `started`), one
 * request compiles the request path too, then V8's code for everything run so far is written next to the bundle.
 */
export async function writeCodeCache(file: string): Promise<void> {
  const { script, exports } = runFunctionBundle(file);
  await exports.started;
  await fetch(`http://127.0.0.1:${process.env.PORT}/health`).then((r) => r.arrayBuffer());
  writeFileSync(`${file}.v8-cache`, script.createCachedData());
  process.exit(0);
}
