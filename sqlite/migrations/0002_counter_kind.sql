-- Migration 2: whether a plain device's lone integers are a counter (docs/protocol.md, "Loss accounting").
-- gaps, missing, duplicates and resets now hold the loss inlet reports: a counter's, an acknowledged
-- device's, and 0 for a values device (loss unknown). kind says which; counting is the recognition's
-- working state, 17 integers separated by spaces (evidence, then the raw, confirmed, suspect and
-- pending gaps, missing, duplicates, resets), NULL for acknowledged devices.
ALTER TABLE devices ADD COLUMN kind TEXT NOT NULL DEFAULT 'values'; -- 'counter', 'values' or 'acked'
ALTER TABLE devices ADD COLUMN counting TEXT;

UPDATE devices SET kind = 'acked' WHERE last_boot IS NOT NULL;

-- A device of version 1 had every lone integer counted. Whether it is a counter is not known until it
-- sends again: it starts as values, its old figures pending; they come back if it is recognised as a
-- counter, and are dropped if it turns out to send readings.
UPDATE devices SET
    counting = printf('0 %d %d %d %d 0 0 0 0 0 0 0 0 %d %d %d %d',
                      gaps, missing, duplicates, resets, gaps, missing, duplicates, resets),
    gaps = 0, missing = 0, duplicates = 0, resets = 0
WHERE last_boot IS NULL;
