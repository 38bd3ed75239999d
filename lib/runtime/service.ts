import type { Cache } from "../cache/cache.ts";
import { openCache } from "../cache/index.ts";
import type { Config } from "../config/index.ts";
import type { Db } from "../db/db.ts";
import { openDb } from "../db/index.ts";
import { migrate } from "../db/migrate.ts";
import { createOutboxDispatcher } from "../events/dispatcher.ts";
import type { ServiceContext } from "../payments/context.ts";
import { createProviders } from "../providers/registry.ts";
import { createLogger, type Logger } from "../telemetry/logger.ts";

export interface ServiceOptions {
  db?: Db;
  cache?: Cache;
  log?: Logger;
  /** Apply migrations at start-up (development and tests; production runs `npm run migrate` as a Job). */
  migrate?: boolean;
  /** The Redis client loads once this settles (or at the first cache write); at once without it. */
  cacheLoadsAfter?: Promise<unknown>;
}

/** Builds the one context every function shares, from configuration. Nothing reads process.env after this. */
export async function createService(config: Config, options: ServiceOptions = {}): Promise<ServiceContext> {
  const log = options.log ?? createLogger(config.logLevel);
  const db = options.db ?? (await openDb(config.db));
  if (options.migrate ?? config.env !== "production") await migrate(db);
  // Redis when configured (shared by the status cache, idempotency locks and the rate limiter), else in-process.
  const cache = options.cache ?? (await openCache(config, log, options.cacheLoadsAfter));
  // With a sink, each commit that wrote events wakes the dispatcher (once the server has started it).
  const outbox = config.events.sink
    ? createOutboxDispatcher({
        db,
        log,
        sink: config.events.sink,
        ceOverrides: config.events.ceOverrides,
        pollIntervalMs: config.events.pollIntervalMs,
      })
    : undefined;
  return {
    config,
    db,
    cache,
    providers: createProviders(config, db, { log }),
    log,
    clock: () => new Date(),
    onEventsWritten: outbox ? outbox.wake : () => {},
    outbox,
  };
}
