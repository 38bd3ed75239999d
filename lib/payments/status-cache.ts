import { JsonText } from "../http/json-text.ts";
import { metrics } from "../telemetry/metrics.ts";
import { CoalescedLoads } from "./coalesced-loads.ts";
import type { VerbContext } from "./context.ts";

const TTL_MS = 30_000;
// After a change the key holds this marker for a moment: a reader that loaded the old row before the commit
// cannot put it back (its set-if-absent fails), so the cache never serves a state older than a committed change.
const INVALIDATED = "\u0000invalidated";
const INVALIDATED_TTL_MS = 2_000;

// Per process: the misses of one key that arrive together read the database twice at most, not once each.
const loads = new CoalescedLoads();

type Kind = "order" | "payment" | "refund";
const key = (ctx: VerbContext, kind: Kind, id: string) => `status:${ctx.actor.merchantId}:${kind}:${id}`;

/**
 * Read-through status cache, answering with the object's JSON text: a hit is sent as it is stored, never parsed and
 * serialized again. Cache errors fall back to the database: Redis accelerates, never decides.
 */
export async function readThrough<T>(
  ctx: VerbContext,
  kind: Kind,
  id: string,
  load: () => Promise<T | undefined>,
): Promise<JsonText | undefined> {
  const k = key(ctx, kind, id);
  let cached: string | undefined;
  try {
    cached = await ctx.cache.get(k);
  } catch (error) {
    metrics.cacheRequests.inc({ cache: "status", result: "error" });
    ctx.log.warn({ err: error }, "status cache read failed; reading the database");
    return asText(await load());
  }
  if (cached !== undefined && cached !== INVALIDATED) {
    metrics.cacheRequests.inc({ cache: "status", result: "hit" });
    return new JsonText(cached);
  }
  metrics.cacheRequests.inc({ cache: "status", result: "miss" });
  const value = await loads.load(k, async () => asText(await load()));
  if (value !== undefined && cached === undefined) {
    ctx.cache.setIfAbsent(k, value.text, TTL_MS).catch(() => {});
  }
  return value;
}

const asText = <T>(value: T | undefined) =>
  value === undefined ? undefined : new JsonText(JSON.stringify(value));

/** Called right after a commit that changed the object, in the same code path. */
export async function invalidateStatusCache(ctx: VerbContext, kind: Kind, id: string): Promise<void> {
  try {
    await ctx.cache.set(key(ctx, kind, id), INVALIDATED, INVALIDATED_TTL_MS);
  } catch (error) {
    ctx.log.warn({ err: error }, "status cache invalidation failed");
  }
}
