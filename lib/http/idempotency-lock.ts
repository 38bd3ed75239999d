import { createHash } from "node:crypto";
import type { Cache } from "../cache/cache.ts";
import { ApiError } from "./errors.ts";

// As long as PostgreSQL's in-flight lease: a lock whose holder died frees the key when the database would.
const LOCK_TTL_MS = 60_000;

/** Releases the lock if this request still holds it; never throws. */
export type ReleaseLock = () => Promise<void>;

const noop: ReleaseLock = async () => {};

/**
 * An in-flight lock in Redis (SET NX PX) in front of the Idempotency-Key record in PostgreSQL: while a request
 * runs, its duplicates are answered 409 `idempotency_key_in_use` by Redis alone, so a client retrying in a
 * loop does not load the database. PostgreSQL stays the source of truth: the lock only ever refuses what the
 * database would refuse too, and when Redis is down, or the key is locked by a different request (which the
 * database answers 422), the request goes on to PostgreSQL as if there were no lock.
 */
export function createIdempotencyLock(cache: Cache) {
  return {
    async acquire(merchantId: string, key: string, fingerprint: string): Promise<ReleaseLock> {
      // Hashed so that a merchant id with a separator in it cannot reach another merchant's keys.
      const lockKey = `idem:${createHash("sha256").update(`${merchantId}\n${key}`).digest("base64url")}`;
      let holder: string | undefined;
      try {
        if (await cache.setIfAbsent(lockKey, fingerprint, LOCK_TTL_MS)) {
          // Deleted unconditionally: if the lock expired and a duplicate took it meanwhile, releasing that one too
          // only sends the duplicate's own duplicates on to PostgreSQL, which answers them exactly.
          return () => cache.del(lockKey).catch(() => {});
        }
        holder = await cache.get(lockKey);
      } catch {
        return noop;
      }
      if (holder === fingerprint) {
        throw new ApiError(
          "idempotency_key_in_use",
          "A request with this Idempotency-Key is still in progress; retry later.",
          { retryAfter: 1 },
        );
      }
      return noop;
    },
  };
}

export type IdempotencyLock = ReturnType<typeof createIdempotencyLock>;
