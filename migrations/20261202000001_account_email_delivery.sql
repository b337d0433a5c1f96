-- notify-worker commits an account email's token before it sends the email (a link is
-- valid when it arrives), and marks the message handled after the send. The token row
-- remembers which message made it, so a second delivery of that message that arrives
-- while the first is still sending waits instead of sending a second link.
ALTER TABLE user_tokens ADD COLUMN message_id uuid;
CREATE INDEX user_tokens_message_id_idx ON user_tokens (message_id) WHERE message_id IS NOT NULL;
