-- Sent outbox events are deleted once past their retention (lib/db/retention.ts), by the service's own role.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'payment_service') THEN
    GRANT DELETE ON outbox TO payment_service;
  END IF;
END $$;
