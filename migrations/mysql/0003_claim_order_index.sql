-- The claim orders by `priority DESC, id`. An ascending index cannot serve that
-- mixed order, so InnoDB read every pending row, sorted them, and a locking read
-- (FOR UPDATE) locked them all until the claim committed: a concurrent claimer
-- then skipped every row and found the queue "empty". With a descending key
-- (MariaDB >= 10.8, MySQL >= 8) the claim reads and locks only the rows it takes.
-- Older servers parse DESC and ignore it; `callscribe doctor` warns there.
CREATE INDEX ai_call_recordings_claim_order_idx
    ON ai_call_recordings (processing_status, priority DESC, id);
