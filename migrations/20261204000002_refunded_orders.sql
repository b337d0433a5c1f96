-- A paid order refunded in full: its tickets are void and back on sale. (A partial
-- refund leaves the order confirmed; the ledger says how much came back.)
ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded';
ALTER TABLE orders ADD COLUMN refunded_at timestamptz;
