-- Migration 2: the publishers' positions (inlet serve --publish, docs/scale.md "NATS JetStream"), as in
-- SQLite: one row per publisher name; last_id is the highest messages.id such that the message and every
-- one before it were acknowledged by JetStream. Nodes on one database may share a name or use one each.
CREATE TABLE publish_positions (
    publisher  text    PRIMARY KEY,  -- e.g. 'nats' (serve --publish-name)
    last_id    bigint  NOT NULL,     -- highest messages.id published and acknowledged, in order
    updated_at bigint  NOT NULL      -- unix nanoseconds of the last save
);
