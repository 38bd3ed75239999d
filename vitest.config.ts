import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["functions/**/*.test.ts", "lib/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // One PGlite instance per worker costs ~300 MiB and a second of start-up; two workers fit two cores.
    pool: "forks",
    maxWorkers: 2,
  },
});
