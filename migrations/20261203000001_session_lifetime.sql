-- A session has two lifetimes: an idle one (`expires_at`, slid forward by each refresh)
-- and an absolute one (`absolute_expires_at`, fixed at login), past which no refresh
-- extends it and its user logs in again. Existing sessions get the default 30 days
-- from their login.
ALTER TABLE sessions ADD COLUMN absolute_expires_at timestamptz;
UPDATE sessions
SET absolute_expires_at = created_at + interval '30 days',
    expires_at = LEAST(expires_at, created_at + interval '30 days');
ALTER TABLE sessions
    ALTER COLUMN absolute_expires_at SET NOT NULL,
    ADD CONSTRAINT sessions_expiry_within_lifetime CHECK (expires_at <= absolute_expires_at);
