import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runFunctionBundle, writeCodeCache } from "./code-cache.ts";

/**
 * dist/main.js, what the image runs. A function (FUNCTION_TARGET=status, …) starts from its own single-file bundle,
 * dist/functions/<name>.cjs, built by scripts/bundle.ts; anything else (all, or a name without a bundle, as under
 * tsx) starts the all-in-one server. On Node 20 one CommonJS file is read and compiled in one go, with V8's code
 * cache, where the ESM loader resolves, reads, compiles and links each of the twenty-odd chunks a function needs in
 * turn (bench/cold-start.ts measures both).
 */
const target = process.env.FUNCTION_TARGET;
const bundle =
  target && /^[a-z]+$/.test(target)
    ? fileURLToPath(new URL(`./functions/${target}.cjs`, import.meta.url))
    : undefined;

if (bundle && existsSync(bundle)) {
  if (process.env.WRITE_CODE_CACHE === "1") await writeCodeCache(bundle);
  else runFunctionBundle(bundle);
} else {
  await import("./main.ts");
}
