-- What is sold of a ticket type, kept on the type, so deciding an order costs the live
-- holds (bounded by the hold period's demand) and not every order the event ever had.
--
-- `sold` moves only in the transaction that confirms an order (or, later, refunds one),
-- under the event's row lock like every inventory decision; held tickets are still
-- counted from the pending orders whose hold has not run out.

ALTER TABLE ticket_types ADD COLUMN sold integer NOT NULL DEFAULT 0 CHECK (sold >= 0);

UPDATE ticket_types t
SET sold = s.quantity
FROM (SELECT l.ticket_type_id, sum(l.quantity)::integer AS quantity
      FROM order_lines l JOIN orders o ON o.id = l.order_id
      WHERE o.status = 'confirmed'
      GROUP BY l.ticket_type_id) s
WHERE s.ticket_type_id = t.id;

-- The live holds of an event.
CREATE INDEX orders_holding_idx ON orders (event_id, hold_expires_at) WHERE status = 'pending';
DROP INDEX orders_taking_idx;
