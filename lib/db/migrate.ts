import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Db } from "./db.ts";

// Source tree: lib/db/migrations; bundles: dist/migrations (the build copies them).
const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));

// Any constant works; it only has to be the same for every instance of the service.
const MIGRATION_LOCK_ID = 7_342_001;

/**
 * Applies pending migrations in order, each recorded in schema_migrations. The whole run holds a transaction-level
 * advisory lock, so two instances starting at once apply each migration exactly once.
 */
export async function migrate(db: Db, dir = MIGRATIONS_DIR): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
  const scripts = await Promise.all(
    files.map(async (f) => ({ version: f, sql: await readFile(`${dir}/${f}`, "utf8") })),
  );
  return db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_ID]);
    await tx.query(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    );
    const done = new Set(
      (await tx.query<{ version: string }>("SELECT version FROM schema_migrations")).rows.map(
        (r) => r.version,
      ),
    );
    const applied: string[] = [];
    for (const { version, sql } of scripts) {
      if (done.has(version)) continue;
      await tx.exec(sql);
      await tx.query("INSERT INTO schema_migrations (version) VALUES ($1)", [version]);
      applied.push(version);
    }
    return applied;
  });
}
