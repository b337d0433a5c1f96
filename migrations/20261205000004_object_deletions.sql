-- Objects to delete from the uploads bucket, written in the transaction that makes them
-- garbage (an account deleted, an avatar replaced) or when a delete failed, and deleted by
-- the upload processor's sweep until S3 says done: nothing is forgotten when S3 is down.
CREATE TABLE object_deletions (
    object_key      text        PRIMARY KEY,
    -- account_deleted, avatar_replaced, abandoned, rejected
    reason          text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX object_deletions_due_idx ON object_deletions (next_attempt_at);
