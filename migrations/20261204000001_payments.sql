-- Card payments (Stripe PaymentIntents), refunds, the money ledger and the webhook
-- events seen. See shared/src/payments.

-- One row per PaymentIntent opened for an order. An order normally has one; a buyer who
-- starts over after a decline gets the next attempt, and the previous is cancelled.
CREATE TABLE payments (
    intent_id     text        PRIMARY KEY CHECK (intent_id ~ '^pi_[A-Za-z0-9_]+$'),
    order_id      uuid        NOT NULL REFERENCES orders (id) ON DELETE RESTRICT,
    attempt       integer     NOT NULL CHECK (attempt > 0),
    amount_minor  bigint      NOT NULL CHECK (amount_minor > 0),
    currency      text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Given to the buyer's browser to confirm the payment; only the buyer's own order
    -- views show it.
    client_secret text        NOT NULL,
    -- Stripe's status as last read from Stripe (webhooks are only hints).
    status        text        NOT NULL,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, attempt)
);

CREATE TYPE refund_status AS ENUM ('requested', 'pending', 'succeeded', 'failed');

-- A refund is written as a request first, in the transaction that decides it, and sent
-- to Stripe after commit with its id as the idempotency key: a crash in between is
-- finished by the next attempt and never refunds twice.
CREATE TABLE refunds (
    id               uuid          PRIMARY KEY,
    order_id         uuid          NOT NULL REFERENCES orders (id) ON DELETE RESTRICT,
    intent_id        text          NOT NULL REFERENCES payments (intent_id) ON DELETE RESTRICT,
    amount_minor     bigint        NOT NULL CHECK (amount_minor > 0),
    -- duplicate_payment, paid_after_hold, event_cancelled, requested_by_organizer
    reason           text          NOT NULL,
    status           refund_status NOT NULL DEFAULT 'requested',
    stripe_refund_id text          UNIQUE,
    requested_by     uuid          REFERENCES users (id) ON DELETE SET NULL,
    created_at       timestamptz   NOT NULL DEFAULT now(),
    updated_at       timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX refunds_order_idx ON refunds (order_id);
CREATE INDEX refunds_unfinished_idx ON refunds (created_at) WHERE status IN ('requested', 'pending');

CREATE TYPE ledger_kind AS ENUM ('charge', 'refund');

-- Money as it moved, in minor units, one row per Stripe charge or refund (its id unique:
-- a charge is recorded once however often it is reported). Append-only: an order's
-- paid and refunded amounts are sums over it.
CREATE TABLE ledger_entries (
    id           uuid        PRIMARY KEY,
    order_id     uuid        NOT NULL REFERENCES orders (id) ON DELETE RESTRICT,
    kind         ledger_kind NOT NULL,
    amount_minor bigint      NOT NULL CHECK (amount_minor > 0),
    currency     text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    stripe_id    text        NOT NULL UNIQUE,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_order_idx ON ledger_entries (order_id);

CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER ledger_entries_append_only
    BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();
CREATE TRIGGER ledger_entries_no_truncate
    BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only();

-- Each Stripe event handled once: a redelivered event changes nothing.
CREATE TABLE stripe_events (
    id          text        PRIMARY KEY,
    type        text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE orders ADD COLUMN paid_at timestamptz;

-- The names the buyer gave for the tickets, issued when the order is paid.
ALTER TABLE orders ADD COLUMN attendee_names text[];
