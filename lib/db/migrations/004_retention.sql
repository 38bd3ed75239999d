-- Sent outbox events are deleted once past their retention (lib/db/retention.ts), by the service's own role, found
-- through this index instead of a walk over every retained event.
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'payment_service') THEN
    GRANT DELETE ON outbox TO payment_service;
  END IF;
END $$;
