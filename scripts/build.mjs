// Bundles the service with esbuild: what the Docker image copies and what `npm start` runs.
import { cp, rm } from "node:fs/promises";
import { build } from "esbuild";

// Kept in node_modules: PGlite loads its WASM and data files from its own package directory; the others are
// optional native/heavy paths loaded lazily (or never) at run time.
const external = ["@electric-sql/pglite", "pg-native", "@google-cloud/functions-framework", "stripe"];

await rm("dist", { recursive: true, force: true });
await build({
  entryPoints: {
    main: "lib/runtime/main.ts",
    "functions-framework": "lib/runtime/functions-framework.ts",
    migrate: "lib/db/migrate-cli.ts",
    reconcile: "scripts/reconcile.ts",
    token: "scripts/token.ts",
  },
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  external,
  logLevel: "warning",
  // Some CommonJS dependencies call require(); give ESM bundles one.
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
});
await cp("lib/db/migrations", "dist/migrations", { recursive: true });
