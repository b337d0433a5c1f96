-- What the retention function (functions/retention) looks for, hourly, in small batches:
-- each rule's predicate gets an index so a batch never scans a whole table.
CREATE INDEX sessions_revoked_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX refresh_tokens_used_idx ON refresh_tokens (used_at) WHERE used_at IS NOT NULL;
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
CREATE INDEX outbox_sent_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX processed_messages_processed_idx ON processed_messages (processed_at);
CREATE INDEX user_tokens_used_idx ON user_tokens (used_at) WHERE used_at IS NOT NULL;
CREATE INDEX user_tokens_expires_idx ON user_tokens (expires_at);
CREATE INDEX uploads_finished_idx ON uploads (created_at) WHERE status IN ('expired', 'rejected');
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
CREATE INDEX stripe_events_received_idx ON stripe_events (received_at);
