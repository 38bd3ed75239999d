import type { Cache } from "../cache/cache.ts";
import { memoryCache } from "../cache/memory.ts";
import type { Config } from "../config/index.ts";
import type { Db } from "../db/db.ts";
import { openDb } from "../db/index.ts";
import { migrate } from "../db/migrate.ts";
import type { ServiceContext } from "../payments/context.ts";
import { createProviders } from "../providers/registry.ts";
import { createLogger, type Logger } from "../telemetry/logger.ts";

export interface ServiceOptions {
  db?: Db;
  cache?: Cache;
  log?: Logger;
  /** Apply migrations at start-up (development and tests; production runs `npm run migrate` as a Job). */
  migrate?: boolean;
}

/** Builds the one context every function shares, from configuration. Nothing reads process.env after this. */
export async function createService(config: Config, options: ServiceOptions = {}): Promise<ServiceContext> {
  const log = options.log ?? createLogger(config.logLevel);
  const db = options.db ?? (await openDb(config.db));
  if (options.migrate ?? config.env !== "production") await migrate(db);
  const cache = options.cache ?? memoryCache();
  return {
    config,
    db,
    cache,
    providers: createProviders(config, db),
    log,
    clock: () => new Date(),
    onEventsWritten: () => {},
  };
}
