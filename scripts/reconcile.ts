import { ConfigError, loadConfig } from "../lib/config/index.ts";
import { pruneExpired } from "../lib/db/retention.ts";
import { reconcile } from "../lib/payments/reconcile.ts";
import { createService } from "../lib/runtime/service.ts";

/**
 * `npm run reconcile`: one reconciliation pass against the configured database and providers, then the retention
 * pass (sent events past OUTBOX_RETENTION_HOURS, expired Idempotency-Key records, provider notifications decided
 * more than PROVIDER_EVENT_RETENTION_DAYS ago), their counts printed as one JSON line, then exit (1 when a provider
 * could not be asked, so a scheduler notices).
 */
try {
  const service = await createService(loadConfig());
  let errors = 0;
  try {
    const result = await reconcile(service, { source: "reconcile" });
    errors = result.payments.errors + result.refunds.errors;
    const pruned = await pruneExpired(service.db, service.config.retention);
    process.stdout.write(`${JSON.stringify({ ...result, pruned })}\n`);
  } finally {
    await service.db.close().catch(() => {});
    await service.cache.close().catch(() => {});
  }
  process.exit(errors > 0 ? 1 : 0);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  throw error;
}
