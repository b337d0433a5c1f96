-- Events that organizers publish. A draft is seen by its organizer (and admins) only; a
-- published or cancelled event by anyone. `version` is the entity tag (If-Match).
-- Ticket types, orders and tickets come in later migrations.

CREATE TYPE event_status AS ENUM ('draft', 'published', 'cancelled');

CREATE TABLE events (
    id              uuid         PRIMARY KEY,
    -- An organizer with events cannot simply vanish: deleting the account is refused
    -- while it has any (the users function answers 409).
    organizer_id    uuid         NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    -- Readable and unique: made from the title, `-2`, `-3`... on a clash.
    slug            text         NOT NULL UNIQUE
                                 CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 90),
    title           text         NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description     text         NOT NULL DEFAULT '' CHECK (char_length(description) <= 20000),
    category        text         NOT NULL CHECK (category ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(category) <= 40),
    venue_name      text         NOT NULL CHECK (char_length(venue_name) BETWEEN 1 AND 200),
    venue_address   text         NOT NULL CHECK (char_length(venue_address) BETWEEN 1 AND 300),
    city            text         NOT NULL CHECK (char_length(city) BETWEEN 1 AND 100),
    region          text         NOT NULL DEFAULT '' CHECK (char_length(region) <= 100),
    -- ISO 3166-1 alpha-2.
    country         text         NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    starts_at       timestamptz  NOT NULL,
    ends_at         timestamptz  NOT NULL,
    -- IANA name (`Europe/Berlin`), checked against the server's zone list on write.
    timezone        text         NOT NULL CHECK (char_length(timezone) BETWEEN 1 AND 64),
    cover_upload_id uuid         REFERENCES uploads (id) ON DELETE SET NULL,
    -- Shared by all its ticket types; NULL: only the types' own quantities limit sales.
    capacity        integer      CHECK (capacity > 0),
    status          event_status NOT NULL DEFAULT 'draft',
    version         bigint       NOT NULL DEFAULT 1,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    updated_at      timestamptz  NOT NULL DEFAULT now(),
    published_at    timestamptz,
    cancelled_at    timestamptz,
    CHECK (ends_at > starts_at)
);

-- The organizer's own list, newest first.
CREATE INDEX events_organizer_idx ON events (organizer_id, created_at DESC, id DESC);
-- The public catalogue: published events by start.
CREATE INDEX events_catalogue_idx ON events (starts_at, id) WHERE status = 'published';
