-- Orders, their lines, the tickets they issue, check-ins at the door, discount codes, and
-- the idempotency keys that make `POST /api/v1/orders` safe to retry.
--
-- Inventory is never stored as a counter: what is taken is counted from the orders that
-- hold it (`confirmed`, or `pending` with a hold that has not run out), always under the
-- event's row lock. So an expired hold frees its tickets the instant it expires, with no
-- sweep to wait for, and the counts cannot drift from the orders.

CREATE TYPE order_status AS ENUM ('pending', 'confirmed', 'cancelled', 'expired');
CREATE TYPE ticket_status AS ENUM ('valid', 'void');

CREATE TABLE discount_codes (
    id               uuid        PRIMARY KEY,
    event_id         uuid        NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- Stored upper-case; buyers type it in any case.
    code             text        NOT NULL CHECK (code ~ '^[A-Z0-9_-]{3,32}$'),
    percent_off      integer     CHECK (percent_off BETWEEN 1 AND 100),
    amount_off_minor bigint      CHECK (amount_off_minor BETWEEN 1 AND 100000000),
    -- NULL: unlimited.
    max_uses         integer     CHECK (max_uses BETWEEN 1 AND 1000000),
    valid_from       timestamptz,
    valid_until      timestamptz,
    -- NULL: every ticket type of the event.
    ticket_type_ids  uuid[],
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, code),
    CHECK ((percent_off IS NULL) <> (amount_off_minor IS NULL)),
    CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_until > valid_from)
);

CREATE TABLE orders (
    id               uuid         PRIMARY KEY,
    event_id         uuid         NOT NULL REFERENCES events (id) ON DELETE RESTRICT,
    -- The organizer keeps the sale (and its tickets stay valid) when a buyer deletes
    -- their account.
    buyer_id         uuid         REFERENCES users (id) ON DELETE SET NULL,
    status           order_status NOT NULL DEFAULT 'pending',
    currency         text         NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    subtotal_minor   bigint       NOT NULL CHECK (subtotal_minor >= 0),
    discount_minor   bigint       NOT NULL DEFAULT 0 CHECK (discount_minor BETWEEN 0 AND subtotal_minor),
    total_minor      bigint       NOT NULL CHECK (total_minor = subtotal_minor - discount_minor),
    discount_code_id uuid         REFERENCES discount_codes (id) ON DELETE RESTRICT,
    -- A pending order holds its tickets until then.
    hold_expires_at  timestamptz  NOT NULL,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now(),
    confirmed_at     timestamptz,
    cancelled_at     timestamptz
);

-- The buyer's list, newest first.
CREATE INDEX orders_buyer_idx ON orders (buyer_id, created_at DESC, id DESC);
-- What is taken: the orders that hold tickets (live or not yet swept).
CREATE INDEX orders_taking_idx ON orders (event_id) WHERE status IN ('pending', 'confirmed');
CREATE INDEX orders_discount_idx ON orders (discount_code_id)
    WHERE discount_code_id IS NOT NULL AND status IN ('pending', 'confirmed');

CREATE TABLE order_lines (
    order_id         uuid    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    -- A ticket type with sales is hidden, never deleted.
    ticket_type_id   uuid    NOT NULL REFERENCES ticket_types (id) ON DELETE RESTRICT,
    quantity         integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    unit_price_minor bigint  NOT NULL CHECK (unit_price_minor >= 0),
    discount_minor   bigint  NOT NULL DEFAULT 0 CHECK (discount_minor BETWEEN 0 AND unit_price_minor * quantity),
    position         smallint NOT NULL,
    PRIMARY KEY (order_id, ticket_type_id)
);

CREATE INDEX order_lines_type_idx ON order_lines (ticket_type_id);

CREATE TABLE tickets (
    id             uuid          PRIMARY KEY,
    order_id       uuid          NOT NULL REFERENCES orders (id) ON DELETE RESTRICT,
    event_id       uuid          NOT NULL REFERENCES events (id) ON DELETE RESTRICT,
    ticket_type_id uuid          NOT NULL REFERENCES ticket_types (id) ON DELETE RESTRICT,
    attendee_name  text          NOT NULL CHECK (char_length(attendee_name) BETWEEN 1 AND 100),
    -- 128 random bits in RFC 4648 base32 (what a QR code's alphanumeric mode packs best).
    code           text          NOT NULL UNIQUE CHECK (code ~ '^[A-Z2-7]{26}$'),
    status         ticket_status NOT NULL DEFAULT 'valid',
    created_at     timestamptz   NOT NULL DEFAULT now(),
    voided_at      timestamptz,
    CHECK ((status = 'void') = (voided_at IS NOT NULL))
);

CREATE INDEX tickets_order_idx ON tickets (order_id);
-- The attendee list, in order of issue.
CREATE INDEX tickets_event_idx ON tickets (event_id, created_at, id);

-- One row per admitted ticket: a second scan finds it and is refused.
CREATE TABLE check_ins (
    ticket_id  uuid        PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    event_id   uuid        NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- The scanner's retry token: the same nonce again gets the first answer.
    nonce      text        NOT NULL CHECK (char_length(nonce) BETWEEN 1 AND 100),
    scanned_by uuid        REFERENCES users (id) ON DELETE SET NULL,
    scanned_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX check_ins_event_idx ON check_ins (event_id);

-- The first successful answer to a request sent with an `Idempotency-Key`, per user and
-- operation, so a retry gets it again and a different body under the same key is refused.
CREATE TABLE idempotency_keys (
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope        text        NOT NULL,
    key          text        NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the request as parsed (so whitespace and key order do not matter).
    request_hash bytea       NOT NULL,
    status_code  smallint    NOT NULL,
    response     jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, scope, key)
);
