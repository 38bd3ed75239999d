-- Orders, payments, refunds and the records that make the API exact: idempotency keys, audit trail, outbox.
-- Money is bigint minor units everywhere. Invariants are enforced here, not only in code.

CREATE TABLE orders (
  id              text PRIMARY KEY,
  merchant_id     text NOT NULL,
  amount          bigint NOT NULL CHECK (amount > 0 AND amount <= 99999999999),
  currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'canceled')),
  description     text,
  metadata        jsonb NOT NULL DEFAULT '{}',
  amount_paid     bigint NOT NULL DEFAULT 0 CHECK (amount_paid >= 0 AND amount_paid <= amount),
  amount_refunded bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount_paid),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_merchant_id ON orders (merchant_id, id);
CREATE INDEX orders_merchant_status_id ON orders (merchant_id, status, id);

CREATE TABLE payments (
  id                  text PRIMARY KEY,
  merchant_id         text NOT NULL,
  order_id            text NOT NULL REFERENCES orders (id),
  amount              bigint NOT NULL CHECK (amount > 0 AND amount <= 99999999999),
  currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  status              text NOT NULL DEFAULT 'requires_confirmation' CHECK (status IN (
                        'requires_confirmation', 'processing', 'requires_action', 'requires_capture',
                        'succeeded', 'failed', 'canceled')),
  provider            text NOT NULL,
  provider_payment_id text,
  payment_method      text NOT NULL,
  capture_method      text NOT NULL DEFAULT 'automatic' CHECK (capture_method IN ('automatic', 'manual')),
  amount_capturable   bigint NOT NULL DEFAULT 0 CHECK (amount_capturable >= 0 AND amount_capturable <= amount),
  amount_captured     bigint NOT NULL DEFAULT 0 CHECK (amount_captured >= 0 AND amount_captured <= amount),
  amount_refunded     bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount_captured),
  next_action         jsonb,
  failure             jsonb,
  cancellation_reason text,
  return_url          text,
  description         text,
  metadata            jsonb NOT NULL DEFAULT '{}',
  -- Incremented on every confirm attempt; the provider's idempotency key is derived from (id, operation, attempt).
  attempt             integer NOT NULL DEFAULT 0,
  processing_since    timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_merchant_id ON payments (merchant_id, id);
CREATE INDEX payments_merchant_status_id ON payments (merchant_id, status, id);
CREATE INDEX payments_order_id ON payments (order_id, id);
CREATE INDEX payments_processing ON payments (processing_since) WHERE status = 'processing';
CREATE INDEX payments_open ON payments (status)
  WHERE status IN ('requires_confirmation', 'processing', 'requires_action', 'requires_capture');

-- An order is never charged twice: at most one of its payments may be in flight, authorized or succeeded.
-- The second of two racing confirms fails here, before any provider is called.
CREATE UNIQUE INDEX payments_one_active_per_order ON payments (order_id)
  WHERE status IN ('processing', 'requires_action', 'requires_capture', 'succeeded');

-- The payment state machine, enforced for every writer. Terminal states never change.
CREATE FUNCTION payments_check_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = OLD.status THEN
    IF OLD.status IN ('succeeded', 'failed', 'canceled')
       AND (NEW.amount_captured <> OLD.amount_captured OR NEW.failure IS DISTINCT FROM OLD.failure) THEN
      RAISE EXCEPTION 'payment % is % and cannot change', OLD.id, OLD.status USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF NOT (
    (OLD.status = 'requires_confirmation' AND NEW.status IN ('processing', 'canceled')) OR
    (OLD.status = 'processing' AND NEW.status IN ('succeeded', 'failed', 'requires_action', 'requires_capture',
                                                  'requires_confirmation')) OR
    (OLD.status = 'requires_action' AND NEW.status IN ('processing', 'succeeded', 'failed', 'canceled')) OR
    (OLD.status = 'requires_capture' AND NEW.status IN ('processing', 'succeeded', 'canceled'))
  ) THEN
    RAISE EXCEPTION 'payment % cannot move from % to %', OLD.id, OLD.status, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER payments_transition BEFORE UPDATE ON payments
  FOR EACH ROW EXECUTE FUNCTION payments_check_transition();

CREATE TABLE refunds (
  id          text PRIMARY KEY,
  merchant_id text NOT NULL,
  payment_id  text NOT NULL REFERENCES payments (id),
  amount      bigint NOT NULL CHECK (amount > 0),
  currency    text NOT NULL,
  status      text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  reason      text,
  failure     jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_payment_id ON refunds (payment_id, id);

-- Idempotency-Key records, scoped per merchant. A row without a response is a request still in flight.
CREATE TABLE idempotency_keys (
  merchant_id     text NOT NULL,
  key             text NOT NULL,
  request_hash    text NOT NULL,
  locked_until    timestamptz,
  response_status integer,
  response_body   text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL,
  PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);

-- Append-only trail of every change of money or state. No card data, no personal data.
CREATE TABLE audit_log (
  id            bigserial PRIMARY KEY,
  at            timestamptz NOT NULL DEFAULT now(),
  actor_type    text NOT NULL CHECK (actor_type IN ('merchant', 'provider', 'system')),
  actor_id      text NOT NULL,
  action        text NOT NULL,
  object_type   text NOT NULL,
  object_id     text NOT NULL,
  status_before text,
  status_after  text,
  amount        bigint,
  currency      text,
  request_id    text
);
CREATE INDEX audit_log_object ON audit_log (object_id, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- Transactional outbox: each event is written in the transaction of the change it announces.
CREATE TABLE outbox (
  seq             bigserial PRIMARY KEY,
  id              text NOT NULL UNIQUE,
  type            text NOT NULL,
  source          text NOT NULL,
  subject         text NOT NULL,
  partition_key   text NOT NULL,
  merchant_id     text NOT NULL,
  data            jsonb NOT NULL,
  traceparent     text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  sent_at         timestamptz
);
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;

-- The sandbox provider's own ledger: what it charged, unique per idempotency key like a real provider.
CREATE TABLE sandbox_charges (
  idempotency_key text PRIMARY KEY,
  provider_payment_id text NOT NULL,
  payment_id      text NOT NULL,
  operation       text NOT NULL,
  amount          bigint NOT NULL,
  currency        text NOT NULL,
  status          text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sandbox_charges_payment ON sandbox_charges (payment_id);
