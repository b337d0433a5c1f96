-- Real-time push over API Gateway's WebSocket API (shared/src/realtime). The inbox stays
-- the source of truth; these tables only say where to nudge.

-- A connect ticket: short-lived (60 s) and single-use, because a browser cannot set headers
-- on a WebSocket and a long-lived token in a URL ends up in logs. Only its SHA-256 is
-- stored. `$connect` deletes the row it uses, so a ticket works once.
CREATE TABLE realtime_tickets (
    ticket_hash bytea       PRIMARY KEY CHECK (length(ticket_hash) = 32),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The session that asked for it (none for Better Auth tokens): its connections end
    -- with it.
    session_id  uuid        REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX realtime_tickets_expires_idx ON realtime_tickets (expires_at);

-- An open WebSocket of a user (one per tab). `$disconnect` deletes its row, but it is best
-- effort, so rows also expire: API Gateway closes every connection after 2 hours.
CREATE TABLE realtime_connections (
    connection_id text        PRIMARY KEY CHECK (connection_id ~ '^[A-Za-z0-9_=+/-]{1,128}$'),
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id    uuid        REFERENCES sessions (id) ON DELETE CASCADE,
    connected_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX realtime_connections_user_idx ON realtime_connections (user_id);
CREATE INDEX realtime_connections_session_idx ON realtime_connections (session_id);
CREATE INDEX realtime_connections_expires_idx ON realtime_connections (expires_at);
