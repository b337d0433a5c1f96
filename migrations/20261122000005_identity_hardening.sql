-- Identity hardening: email verification, one-time tokens, external identities,
-- brute-force counters and the audit log.

-- Accounts provisioned from an external identity provider (Better Auth) have no local
-- password; they can set one through a password reset.
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

-- The admin user list: newest first, optionally one role, keyset-paged on (created_at, id).
CREATE INDEX users_created_idx ON users (created_at DESC, id DESC);
CREATE INDEX users_role_created_idx ON users (role, created_at DESC, id DESC);

-- An identity at another issuer (Better Auth), linked to one local user. The primary
-- key makes "the first valid token provisions exactly one user" a database fact. When
-- the user is deleted the row stays with a NULL user_id: a tombstone, so the identity's
-- still-valid tokens cannot quietly provision the account again.
CREATE TABLE external_identities (
    issuer     text        NOT NULL CHECK (length(issuer) <= 2048),
    subject    text        NOT NULL CHECK (length(subject) <= 255),
    user_id    uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);

CREATE INDEX external_identities_user_id_idx ON external_identities (user_id);

-- Single-use tokens sent by email. Only their SHA-256 is stored, like refresh tokens.
CREATE TYPE user_token_purpose AS ENUM ('password_reset', 'email_verification');

CREATE TABLE user_tokens (
    token_hash bytea              PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    uuid               NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    user_token_purpose NOT NULL,
    -- The address the token was sent to: a token proves control of that address only.
    email      text               NOT NULL,
    created_at timestamptz        NOT NULL DEFAULT now(),
    expires_at timestamptz        NOT NULL,
    used_at    timestamptz
);

CREATE INDEX user_tokens_user_id_idx ON user_tokens (user_id, purpose);

-- Per-account lockout, keyed by the SHA-256 of the lower-cased email, whether or not an
-- account has it (so a lockout says nothing about which emails are registered).
-- `attempts` counts logins started in the current window: an attempt is reserved before
-- the password is checked, so concurrent guesses cannot overshoot the limit.
CREATE TABLE login_attempts (
    email_key         bytea       PRIMARY KEY CHECK (length(email_key) = 32),
    attempts          integer     NOT NULL,
    window_started_at timestamptz NOT NULL,
    locked_until      timestamptz
);

-- Fixed-window request counters per (bucket, client), shared by every Lambda instance.
CREATE TABLE rate_limits (
    bucket            text        NOT NULL,
    client            text        NOT NULL,
    hits              integer     NOT NULL,
    window_started_at timestamptz NOT NULL,
    PRIMARY KEY (bucket, client)
);

CREATE INDEX rate_limits_window_idx ON rate_limits (window_started_at);

-- The security audit log. Append-only: no foreign keys (it outlives the users it
-- names) and a trigger refuses UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit_events (
    id          uuid        PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    kind        text        NOT NULL,
    actor_id    uuid,
    target_id   uuid,
    ip          text,
    user_agent  text CHECK (length(user_agent) <= 512),
    request_id  text,
    details     jsonb       NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_events_occurred_idx ON audit_events (occurred_at DESC, id DESC);
CREATE INDEX audit_events_kind_idx ON audit_events (kind, occurred_at DESC, id DESC);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, occurred_at DESC, id DESC);
CREATE INDEX audit_events_target_idx ON audit_events (target_id, occurred_at DESC, id DESC);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
