import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { migrate } from "../../lib/db/migrate.ts";
import { dumpPglite, openPglite } from "../../lib/db/pglite.ts";

/**
 * initdb costs seconds per PGlite instance; do it once per run, migrate, and let every test file open a copy of
 * the snapshot instead.
 */
export default async function setup(project: TestProject) {
  const db = await openPglite();
  await migrate(db);
  const snapshot = await dumpPglite(db);
  await db.close();
  const file = join(tmpdir(), `payment-service-pglite-${process.pid}.tar`);
  await writeFile(file, Buffer.from(await snapshot.arrayBuffer()));
  project.provide("pgliteSnapshot", file);
}

declare module "vitest" {
  export interface ProvidedContext {
    pgliteSnapshot: string;
  }
}
