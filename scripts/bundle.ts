import { execFile } from "node:child_process";
import { cp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { type BuildOptions, build } from "esbuild";

const run = promisify(execFile);

// Kept in node_modules: PGlite loads its WASM and data files from its own package directory; the others are
// optional native/heavy paths loaded lazily (or never) at run time.
const EXTERNAL = ["@electric-sql/pglite", "pg-native", "@google-cloud/functions-framework", "stripe"];

/** What both builds share, so the ESM entries and the function bundles stay alike. */
const COMMON = {
  bundle: true,
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  // Less text for V8 to scan at every cold start (≈ 7 % of spawn → first answer). Names are kept, so stack
  // traces stay readable; `node --enable-source-maps` maps them back to the sources.
  minifyWhitespace: true,
  minifySyntax: true,
  external: EXTERNAL,
  logLevel: "warning",
} satisfies BuildOptions;

const ENTRIES = {
  // Starts a function from its own bundle below, or the all-in-one server (lib/runtime/main.ts).
  main: "lib/runtime/launch.ts",
  "functions-framework": "lib/runtime/functions-framework.ts",
  migrate: "lib/db/migrate-cli.ts",
  reconcile: "scripts/reconcile.ts",
  token: "scripts/token.ts",
};

/**
 * Bundles the service with esbuild into `outdir`: what the Docker image copies (dist/), what `npm start` runs, and
 * what tests that start the service as a process build into a directory of their own (so they never race a
 * rebuild of dist/). `root` is the repository; an outdir must sit below it so the external packages resolve.
 */
export async function bundle(outdir: string, root = process.cwd()): Promise<void> {
  await rm(outdir, { recursive: true, force: true });
  await build({
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, file]) => [name, join(root, file)])),
    ...COMMON,
    outdir,
    splitting: true,
    format: "esm",
    // Some CommonJS dependencies call require(); give ESM bundles one.
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
  });
  await bundleFunctions(outdir, root);
  await cp(join(root, "lib/db/migrations"), join(outdir, "migrations"), { recursive: true });
  await Promise.all(Object.keys(FUNCTIONS).map((name) => recordCodeCache(outdir, name)));
}

/**
 * Starts a function bundle once, as dist/main.js does, so it writes V8's code cache beside itself: with the Node
 * that builds (in the image, the same node:22-slim that runs it). No database is needed: nothing listens on the
 * address given, and a function starts without its database (its readiness probe would say so).
 */
async function recordCodeCache(outdir: string, name: string): Promise<void> {
  const port = await new Promise<number>((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
    server.once("error", reject);
  });
  await run(process.execPath, [join(outdir, "main.js")], {
    env: {
      PATH: process.env.PATH ?? "",
      WRITE_CODE_CACHE: "1",
      FUNCTION_TARGET: name,
      PORT: String(port),
      NODE_ENV: "production",
      DATABASE_URL: "postgres://code-cache@127.0.0.1:9/none",
      JWT_SECRET: "code-cache-recording-run-0123456789abcdef",
      LOG_LEVEL: "silent",
    },
    timeout: 60_000,
  });
}

/** Each function's definition, which its own bundle serves and nothing else. */
const FUNCTIONS: Record<string, { file: string; definition: string }> = {
  create: { file: "functions/create/index.ts", definition: "createFunction" },
  confirm: { file: "functions/confirm/index.ts", definition: "confirmFunction" },
  cancel: { file: "functions/cancel/index.ts", definition: "cancelFunction" },
  status: { file: "functions/status/index.ts", definition: "statusFunction" },
  webhook: { file: "functions/webhook/index.ts", definition: "webhookFunction" },
  // The health function serves the API description, so it holds every route's schema.
  health: { file: "functions/registry.ts", definition: "functions" },
};

/**
 * One CommonJS file per function, dist/functions/<name>.cjs, which dist/main.js starts when FUNCTION_TARGET names
 * it (lib/runtime/launch.ts): read and compiled in one go at a cold start, instead of the ESM chunks above one by
 * one. What a function loads only on demand stays in the file, behind esbuild's lazy module wrappers, except
 * OpenTelemetry: about 2.4 MB that every cold start would scan, so it is a file of its own next to them, given the
 * bundle's own modules when loaded (lib/telemetry/otel.ts, Instrumented).
 */
async function bundleFunctions(outdir: string, root: string): Promise<void> {
  await build({
    entryPoints: [
      ...Object.keys(FUNCTIONS).map((name) => ({ in: `function:${name}`, out: name })),
      // Not a name FUNCTION_TARGET can take (lib/runtime/launch.ts accepts [a-z]+ only).
      { in: join(root, "lib/telemetry/otel.ts"), out: "_otel" },
    ],
    outdir: join(outdir, "functions"),
    ...COMMON,
    outExtension: { ".js": ".cjs" },
    format: "cjs",
    // import() of what stays outside (_otel.cjs, PGlite, Stripe: all have a CommonJS entry) becomes require(): a
    // script compiled with a code cache has no dynamic-import hook on Node 20 (lib/runtime/code-cache.ts).
    supported: { "dynamic-import": false },
    // import.meta.url locates files shipped beside the bundles (the SQL migrations): dist/, as for the ESM entries.
    define: { "import.meta.url": "importMetaUrl" },
    banner: {
      js: 'const importMetaUrl = require("node:url").pathToFileURL(require("node:path").join(__dirname, "../main.js")).href;',
    },
    plugins: [
      {
        name: "function-entries",
        setup(b) {
          b.onResolve({ filter: /^function:/ }, (args) => ({
            path: args.path.slice("function:".length),
            namespace: "function-entry",
          }));
          b.onLoad({ filter: /.*/, namespace: "function-entry" }, (args) => {
            const fn = FUNCTIONS[args.path] as { file: string; definition: string };
            const served = fn.definition === "functions" ? "functions.health" : fn.definition;
            return {
              contents: [
                `import { ${fn.definition} } from ${JSON.stringify(join(root, fn.file))};`,
                `import { serve } from ${JSON.stringify(join(root, "lib/runtime/serve.ts"))};`,
                // Awaited by the build's code-cache recording run (lib/runtime/code-cache.ts).
                `export const started = serve(() => [${served}]);`,
              ].join("\n"),
              loader: "ts",
              resolveDir: root,
            };
          });
          // preload.ts's import("./otel.ts") loads the file built beside the bundle instead.
          b.onResolve({ filter: /\/otel\.ts$/ }, (args) =>
            args.kind === "dynamic-import" ? { path: "./_otel.cjs", external: true } : undefined,
          );
        },
      },
    ],
  });
}
