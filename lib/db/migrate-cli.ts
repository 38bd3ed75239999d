import { ConfigError, loadConfig } from "../config/index.ts";
import { openDb } from "./index.ts";
import { migrate } from "./migrate.ts";

/** `npm run migrate`: what the Kubernetes migration Job runs. Safe to start twice at once (advisory lock). */
try {
  const config = loadConfig();
  const db = await openDb(config.db);
  const applied = await migrate(db);
  process.stdout.write(applied.length ? `applied ${applied.join(", ")}\n` : "database is up to date\n");
  await db.close();
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
  process.exit(1);
}
