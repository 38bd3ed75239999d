-- The object a keyed request created or changed, written in the same statement as that change. If the process dies
-- after the commit but before the response is stored, a retry under the key answers with this object instead of
-- running the request again (a second order, a second refund).
ALTER TABLE idempotency_keys ADD COLUMN recovery_point text;

-- Reconciliation scans refunds left pending by an unknown provider outcome.
CREATE INDEX refunds_pending ON refunds (created_at) WHERE status = 'pending';
