-- What an event sells: each type has a price (minor units of one ISO 4217 currency, the
-- same for every type of an event), a quantity, a sales window and per-order limits.
CREATE TABLE ticket_types (
    id            uuid        PRIMARY KEY,
    event_id      uuid        NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    description   text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
    price_minor   bigint      NOT NULL CHECK (price_minor BETWEEN 0 AND 100000000),
    currency      text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    quantity      integer     NOT NULL CHECK (quantity BETWEEN 0 AND 1000000),
    sales_start   timestamptz,
    sales_end     timestamptz,
    min_per_order integer     NOT NULL DEFAULT 1 CHECK (min_per_order >= 1),
    max_per_order integer     NOT NULL DEFAULT 10 CHECK (max_per_order BETWEEN min_per_order AND 100),
    hidden        boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (sales_start IS NULL OR sales_end IS NULL OR sales_end > sales_start)
);

CREATE INDEX ticket_types_event_idx ON ticket_types (event_id, created_at, id);
