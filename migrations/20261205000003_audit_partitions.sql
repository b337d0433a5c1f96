-- The audit log in monthly partitions, so that retention (400 days by default) drops a
-- whole month at a time and rows are never deleted one by one: the table stays
-- append-only (its triggers refuse UPDATE, DELETE and TRUNCATE) between drops.
-- `audit_events_maintain` (called hourly by the retention function) creates the coming
-- months' partitions ahead of time and drops the ones wholly past retention. A default
-- partition catches rows outside every month's, should maintenance ever stop.

ALTER TABLE audit_events RENAME TO audit_events_unpartitioned;
DROP TRIGGER audit_events_no_update ON audit_events_unpartitioned;
DROP TRIGGER audit_events_no_truncate ON audit_events_unpartitioned;
ALTER INDEX audit_events_occurred_idx RENAME TO audit_events_unpartitioned_occurred_idx;
ALTER INDEX audit_events_kind_idx RENAME TO audit_events_unpartitioned_kind_idx;
ALTER INDEX audit_events_actor_idx RENAME TO audit_events_unpartitioned_actor_idx;
ALTER INDEX audit_events_target_idx RENAME TO audit_events_unpartitioned_target_idx;

CREATE TABLE audit_events (
    id          uuid        NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    kind        text        NOT NULL,
    actor_id    uuid,
    target_id   uuid,
    ip          text,
    user_agent  text CHECK (length(user_agent) <= 512),
    request_id  text,
    details     jsonb       NOT NULL DEFAULT '{}',
    -- A partitioned table's keys include the partition key; ids are UUIDv7 and unique anyway.
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);

CREATE INDEX audit_events_occurred_idx ON audit_events (occurred_at DESC, id DESC);
CREATE INDEX audit_events_kind_idx ON audit_events (kind, occurred_at DESC, id DESC);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, occurred_at DESC, id DESC);
CREATE INDEX audit_events_target_idx ON audit_events (target_id, occurred_at DESC, id DESC);

CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events_default
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Creates the partitions of the months (UTC) from `since` to three months ahead (existing
-- ones are left alone; a new one refuses TRUNCATE like the rest), then drops every monthly
-- partition that ended before now - `keep`. Returns how many partitions were dropped.
-- SECURITY DEFINER: it runs as the schema's owner (the migrations' role), so the
-- functions' role needs no DDL rights, only EXECUTE on this.
CREATE FUNCTION audit_events_maintain(since timestamptz, keep interval) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    month   timestamp := date_trunc('month', least(since, now()) AT TIME ZONE 'UTC');
    name    text;
    part    record;
    dropped integer := 0;
BEGIN
    WHILE month <= date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months' LOOP
        name := 'audit_events_' || to_char(month, 'YYYY_MM');
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
                name, month AT TIME ZONE 'UTC', (month + interval '1 month') AT TIME ZONE 'UTC');
            EXECUTE format(
                'CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON %I
                 FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()', name);
        END IF;
        month := month + interval '1 month';
    END LOOP;
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_events'::regclass
          AND c.relname ~ '^audit_events_[0-9]{4}_[0-9]{2}$'
          AND (to_date(substr(c.relname, 14), 'YYYY_MM') + interval '1 month') AT TIME ZONE 'UTC'
              <= now() - keep
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END;
$$;

SELECT audit_events_maintain(
    coalesce((SELECT min(occurred_at) FROM audit_events_unpartitioned), now()),
    interval '100 years');

INSERT INTO audit_events SELECT * FROM audit_events_unpartitioned;
DROP TABLE audit_events_unpartitioned;

-- Append-only, as before: row triggers are cloned onto every partition; TRUNCATE is
-- refused on the parent.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
