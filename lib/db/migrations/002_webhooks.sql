-- Provider notifications, the index that finds a payment by the provider's id, and the database role the service
-- runs as (append-only audit trail enforced by privileges as well as by trigger).

-- Every verified provider notification, once per (provider, event id): a repeated delivery finds its row and is
-- acknowledged without being applied again. Only the normalized notification is kept, never the raw body: raw
-- payloads can carry personal data (names, e-mail addresses, card details) that this service must not store.
CREATE TABLE provider_events (
  provider            text NOT NULL,
  event_id            text NOT NULL,
  type                text NOT NULL,
  -- Our payment (or refund) id once resolved; the provider's payment id as sent.
  payment_id          text,
  refund_id           text,
  provider_payment_id text,
  occurred_at         timestamptz NOT NULL,
  -- The verified notification in provider-neutral terms (lib/providers/provider.ts ProviderNotification).
  notification        jsonb NOT NULL,
  -- pending: stored, not applied yet (its payment is not known yet; retried and swept);
  -- applied: it moved a payment or refund; ignored: recorded and deliberately not applied, see reason.
  status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'applied', 'ignored')),
  reason              text CHECK (reason IN (
                        'unhandled_type', 'stale', 'not_applicable', 'mismatch', 'no_reference', 'expired')),
  deliveries          integer NOT NULL DEFAULT 1 CHECK (deliveries > 0),
  -- The request that delivered it last, so audit rows written when it is applied lead back to a log line.
  request_id          text,
  traceparent         text,
  received_at         timestamptz NOT NULL DEFAULT now(),
  last_received_at    timestamptz NOT NULL DEFAULT now(),
  decided_at          timestamptz,
  PRIMARY KEY (provider, event_id),
  CHECK ((status = 'ignored') = (reason IS NOT NULL)),
  CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX provider_events_pending ON provider_events (occurred_at) WHERE status = 'pending';
-- "Is this older than the last notification applied to the payment?" is asked for every notification.
CREATE INDEX provider_events_applied ON provider_events (provider, payment_id, occurred_at) WHERE status = 'applied';

-- A decided notification is final, like a terminal payment: only its delivery counters may move.
CREATE FUNCTION provider_events_decided_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status <> 'pending' AND (NEW.status, NEW.reason, NEW.payment_id, NEW.refund_id, NEW.notification, NEW.decided_at)
       IS DISTINCT FROM (OLD.status, OLD.reason, OLD.payment_id, OLD.refund_id, OLD.notification, OLD.decided_at) THEN
    RAISE EXCEPTION 'provider event %/% is % and cannot change', OLD.provider, OLD.event_id, OLD.status
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER provider_events_final BEFORE UPDATE ON provider_events
  FOR EACH ROW EXECUTE FUNCTION provider_events_decided_once();

-- Notifications that carry only the provider's payment id find the payment through this.
CREATE INDEX payments_provider_payment_id ON payments (provider, provider_payment_id)
  WHERE provider_payment_id IS NOT NULL;

-- Claiming "the oldest unsent event of each partition" reads unsent rows by partition in order.
CREATE INDEX outbox_unsent_partition ON outbox (partition_key, seq) WHERE sent_at IS NULL;

-- The row trigger of 001 does not fire on TRUNCATE; this closes that door for the table owner too.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- The role the service's login user is granted (GRANT payment_service TO <login user>); migrations run as the
-- owner. It may write the audit trail but never rewrite it: SELECT and INSERT only, so even a bug or an injected
-- statement cannot UPDATE, DELETE or TRUNCATE audit_log. Roles are per cluster, so the role is created only when
-- absent, and a migration user without CREATEROLE (some managed databases) skips the grants with a notice
-- instead of failing: there a DBA creates the role, and re-running these GRANTs by hand is safe. PGlite
-- supports all of this, so the embedded database gets the same privileges.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'payment_service') THEN
    BEGIN
      CREATE ROLE payment_service NOLOGIN;
    EXCEPTION
      -- Another database of the same cluster migrating at the same moment created it first.
      WHEN duplicate_object OR unique_violation THEN NULL;
      WHEN insufficient_privilege THEN
        RAISE NOTICE 'role payment_service not created (no CREATEROLE); grants skipped';
    END;
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'payment_service') THEN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO payment_service', current_schema());
    REVOKE ALL ON audit_log FROM payment_service;
    GRANT SELECT, INSERT ON audit_log TO payment_service;
    GRANT SELECT, INSERT, UPDATE ON orders, payments, refunds, outbox, provider_events, sandbox_charges
      TO payment_service;
    -- Idempotency records of failed requests are deleted so the client may retry with the same key.
    GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO payment_service;
    GRANT SELECT ON schema_migrations TO payment_service;
    GRANT USAGE, SELECT ON SEQUENCE audit_log_id_seq, outbox_seq_seq TO payment_service;
  END IF;
END $$;
