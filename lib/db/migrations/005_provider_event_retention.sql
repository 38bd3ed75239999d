-- Decided provider notifications are deleted once past their retention (lib/db/retention.ts), long after any
-- provider stops retrying them, by the service's own role, found through this index. Pending ones are never
-- deleted here: the sweep decides them first.
CREATE INDEX provider_events_decided_at ON provider_events (decided_at) WHERE status <> 'pending';

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'payment_service') THEN
    GRANT DELETE ON provider_events TO payment_service;
  END IF;
END $$;
