-- Migration 4: the publishers' positions (inlet serve --publish, docs/scale.md "NATS JetStream"). One row per
-- publisher: last_id is the highest messages.id such that the message and every one before it were
-- acknowledged by the downstream system (JetStream). Publishing resumes after it. A publisher name is a key so
-- that a store shared by several nodes can hold one position per node, or one for all of them.
CREATE TABLE publish_positions (
    publisher  TEXT    PRIMARY KEY,  -- e.g. 'nats' (serve --publish-name)
    last_id    INTEGER NOT NULL,     -- highest messages.id published and acknowledged, in order
    updated_at INTEGER NOT NULL      -- unix nanoseconds of the last save
) WITHOUT ROWID;
