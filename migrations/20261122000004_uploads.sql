-- Files that browsers upload straight to S3 through presigned URLs.
--
-- A row is written before the URL is signed (status pending); the upload processor,
-- driven by the bucket's ObjectCreated events, checks the real object and marks the row
-- ready or rejected. The object key is generated here, never taken from the client.

CREATE TYPE upload_purpose AS ENUM ('avatar', 'event_image', 'attachment');
CREATE TYPE upload_status AS ENUM ('pending', 'ready', 'rejected', 'expired');

CREATE TABLE uploads (
    id               uuid           PRIMARY KEY,
    owner_id         uuid           NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose          upload_purpose NOT NULL,
    object_key       text           NOT NULL UNIQUE,
    -- The client's file name, cleaned, for display and Content-Disposition only.
    filename         text           NOT NULL CHECK (char_length(filename) BETWEEN 1 AND 255),
    content_type     text           NOT NULL,
    size             bigint         NOT NULL CHECK (size > 0),
    status           upload_status  NOT NULL DEFAULT 'pending',
    rejection_reason text,
    created_at       timestamptz    NOT NULL DEFAULT now(),
    -- When the presigned URL stops working; a pending upload past it is abandoned.
    url_expires_at   timestamptz    NOT NULL,
    ready_at         timestamptz
);

CREATE INDEX uploads_owner_idx ON uploads (owner_id, created_at DESC);
-- Serves the sweep of abandoned uploads.
CREATE INDEX uploads_pending_idx ON uploads (url_expires_at) WHERE status = 'pending';

ALTER TABLE users ADD COLUMN avatar_upload_id uuid REFERENCES uploads (id) ON DELETE SET NULL;
