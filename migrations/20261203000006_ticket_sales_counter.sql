-- What is sold and held of a ticket type, kept on the type, so deciding an order costs
-- O(1) plus the holds that lapsed since the last decision, not every order the event had.
--
-- Both counters move only in the transactions that change an order (placing, confirming,
-- cancelling, releasing a lapsed hold, later refunding), always under the event's row
-- lock where a decision depends on them. A pending order whose hold has lapsed still
-- counts in `held` until it is released: the next decision for its event marks it
-- `expired` and takes it off, and readers subtract the lapsed ones meanwhile.

ALTER TABLE ticket_types
    ADD COLUMN sold integer NOT NULL DEFAULT 0 CHECK (sold >= 0),
    ADD COLUMN held integer NOT NULL DEFAULT 0 CHECK (held >= 0);

UPDATE ticket_types t
SET sold = s.sold, held = s.held
FROM (SELECT l.ticket_type_id,
             coalesce(sum(l.quantity) FILTER (WHERE o.status = 'confirmed'), 0)::integer AS sold,
             coalesce(sum(l.quantity) FILTER (WHERE o.status = 'pending'), 0)::integer AS held
      FROM order_lines l JOIN orders o ON o.id = l.order_id
      GROUP BY l.ticket_type_id) s
WHERE s.ticket_type_id = t.id;

-- The holds of an event, by expiry (the lapsed ones are found from the front).
CREATE INDEX orders_holding_idx ON orders (event_id, hold_expires_at) WHERE status = 'pending';
DROP INDEX orders_taking_idx;
