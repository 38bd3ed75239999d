import { createHash } from "node:crypto";
import type { Db } from "../db/db.ts";
import { ApiError } from "./errors.ts";

export interface StoredResponse {
  status: number;
  body: string;
}

export type IdempotencyClaim =
  | {
      kind: "claimed" /** "order:ord_…" when a previous holder of the key committed its change but died. */;
      recoveryPoint?: string;
    }
  | { kind: "replay"; response: StoredResponse };

// Printable ASCII, 1–255 characters.
const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;

// A request that takes longer than this is presumed dead (its process crashed); the key may then be retried.
const IN_FLIGHT_LEASE_SECONDS = 60;

export function validIdempotencyKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

export function requestFingerprint(method: string, path: string, body: string): string {
  return createHash("sha256").update(`${method}\n${path}\n${body}`).digest("base64url");
}

/**
 * Idempotency-Key records in PostgreSQL, scoped per merchant. The claim is one statement: insert the key as in
 * flight, or take over a row that expired or whose request died; otherwise the existing row decides between
 * replay (same request, finished), 409 (same request, in flight) and 422 (different request).
 */
export function createIdempotencyStore(db: Db, ttlSeconds: number) {
  return {
    async claim(merchantId: string, key: string, fingerprint: string): Promise<IdempotencyClaim> {
      const claimed = await db.query(
        `INSERT INTO idempotency_keys (merchant_id, key, request_hash, locked_until, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4), now() + make_interval(secs => $5))
         ON CONFLICT (merchant_id, key) DO UPDATE SET
           request_hash = EXCLUDED.request_hash, locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at,
           response_status = NULL, response_body = NULL, created_at = now(),
           -- A lease taken over keeps what the dead holder committed; an expired record starts afresh.
           recovery_point = CASE WHEN idempotency_keys.expires_at < now() THEN NULL ELSE idempotency_keys.recovery_point END
         WHERE idempotency_keys.expires_at < now()
            OR (idempotency_keys.response_status IS NULL AND idempotency_keys.locked_until < now()
                AND idempotency_keys.request_hash = EXCLUDED.request_hash)
         RETURNING recovery_point`,
        [merchantId, key, fingerprint, IN_FLIGHT_LEASE_SECONDS, ttlSeconds],
      );
      if (claimed.rowCount > 0) {
        const recoveryPoint = (claimed.rows[0] as { recovery_point: string | null } | undefined)
          ?.recovery_point;
        return recoveryPoint ? { kind: "claimed", recoveryPoint } : { kind: "claimed" };
      }
      const { rows } = await db.query<{
        request_hash: string;
        response_status: number | null;
        response_body: string | null;
      }>(
        "SELECT request_hash, response_status, response_body FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
        [merchantId, key],
      );
      const row = rows[0];
      if (!row) return this.claim(merchantId, key, fingerprint); // deleted in between (a 5xx): try again
      if (row.request_hash !== fingerprint) {
        throw new ApiError(
          "idempotency_key_reused",
          "This Idempotency-Key was used with a different request (method, path or body).",
        );
      }
      if (row.response_status === null) {
        throw new ApiError(
          "idempotency_key_in_use",
          "A request with this Idempotency-Key is still in progress; retry later.",
          {
            retryAfter: 1,
          },
        );
      }
      return {
        kind: "replay",
        response: { status: row.response_status, body: asFirstSent(row.response_body ?? "") },
      };
    },

    /**
     * Stores the final response of a request whose change did not store it itself (see Actor.successStatus);
     * 5xx responses release the key instead (nothing was committed).
     */
    async complete(merchantId: string, key: string, response: StoredResponse): Promise<void> {
      if (response.status >= 500) {
        await db.query(
          "DELETE FROM idempotency_keys WHERE merchant_id = $1 AND key = $2 AND response_status IS NULL",
          [merchantId, key],
        );
        return;
      }
      await db.query(
        `UPDATE idempotency_keys SET response_status = $3, response_body = $4, locked_until = NULL
         WHERE merchant_id = $1 AND key = $2`,
        [merchantId, key, response.status, response.body],
      );
    },
  };
}

export type IdempotencyStore = ReturnType<typeof createIdempotencyStore>;

/**
 * A stored body as the first response sent it. An answer the database built with the change (a payment's create,
 * confirm or capture: json_build_object in lib/payments/object-sql.ts) is stored as PostgreSQL writes JSON; the
 * code sent the same object, same keys in the same order, as JSON.stringify writes it, which is what this gives
 * back. Bodies the code stored are JSON.stringify's already, and come back unchanged.
 */
function asFirstSent(body: string): string {
  if (body === "") return body;
  try {
    return JSON.stringify(JSON.parse(body));
  } catch {
    return body;
  }
}
