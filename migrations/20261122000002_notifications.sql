-- In-app notifications, the transactional outbox that feeds the notifications queue,
-- and the record of messages a consumer has already processed (idempotency).

CREATE TABLE notifications (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text        NOT NULL,
    title      text        NOT NULL,
    body       text        NOT NULL,
    read_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Serves the inbox listing: newest first, keyset-paginated on (created_at, id).
CREATE INDEX notifications_inbox_idx ON notifications (user_id, created_at DESC, id DESC);

-- Messages to publish, written in the same transaction as the change that causes them,
-- so a message exists if and only if the change committed. A relay sends them after
-- commit; a scheduled sweep sends whatever the request path could not.
CREATE TABLE outbox (
    id              uuid        PRIMARY KEY,
    queue           text        NOT NULL,
    payload         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz
);

CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE sent_at IS NULL;

-- One row per (consumer, message) handled. The message id is the outbox id, not the
-- SQS message id: a double relay produces two SQS messages with the same outbox id.
CREATE TABLE processed_messages (
    consumer     text        NOT NULL,
    message_id   uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
