-- Migration 1: inlet's PostgreSQL schema (PostgreSQL schema version 1): the SQLite schema's tables and
-- columns (SQLite version 2), in PostgreSQL's types. A user-facing contract: see docs/schema.md.
CREATE TABLE messages (
    id          bigint  PRIMARY KEY,  -- commit order: taken from messages_id_seq under the commit lock
    received_at bigint  NOT NULL,     -- server receive time, unix nanoseconds
    device      text    NOT NULL,     -- plain mode: the remote IP address
    transport   text    NOT NULL,     -- 'tcp' or 'udp'
    remote      text    NOT NULL,     -- ip:port the message came from
    boot        text,                 -- acknowledged mode only
    seq         bigint,               -- acknowledged mode only
    payload     bytea   NOT NULL,     -- the bytes exactly as sent
    fields      json                  -- derived fields, a JSON object, or NULL (json keeps the text as derived)
);
-- CACHE 1 (the default) matters: a session caching ids would commit them out of order.
CREATE SEQUENCE messages_id_seq CACHE 1 OWNED BY messages.id;
ALTER TABLE messages ALTER COLUMN id SET DEFAULT nextval('messages_id_seq');
CREATE INDEX messages_device ON messages (device, id);
CREATE UNIQUE INDEX messages_seq ON messages (device, boot, seq) WHERE seq IS NOT NULL;
-- received_at follows id closely: a BRIN index finds a time range for almost nothing per insert.
CREATE INDEX messages_received ON messages USING brin (received_at);

CREATE TABLE devices (
    device       text    PRIMARY KEY,
    messages     bigint  NOT NULL,
    first_seen   bigint  NOT NULL,    -- unix nanoseconds
    last_seen    bigint  NOT NULL,    -- unix nanoseconds
    gaps         bigint  NOT NULL,    -- reported loss: separate ranges never received
    missing      bigint  NOT NULL,    -- reported loss: values never received
    duplicates   bigint  NOT NULL,
    resets       bigint  NOT NULL,
    last_counter bigint,              -- highest counter of the current run, NULL if none
    run_low      bigint,              -- lowest counter of the current run
    run_seen     bigint,              -- bitmap: bit i set when last_counter-i was received
    last_boot    text,                -- acknowledged mode: the boot of the latest sequence
    kind         text    NOT NULL DEFAULT 'values', -- 'counter', 'values' or 'acked'
    counting     text,                -- the counter recognition's working state (as in SQLite)
    version      bigint  NOT NULL DEFAULT 0 -- commits that changed this row; nodes compare it
);

-- Acknowledged mode: one row per (device, boot) sequence.
CREATE TABLE boots (
    device       text    NOT NULL,
    boot         text    NOT NULL,
    last_seq     bigint  NOT NULL,    -- highest seq stored
    missing      jsonb   NOT NULL,    -- array of [from, to] ranges never received, below last_seq
    messages     bigint  NOT NULL,
    first_seen   bigint  NOT NULL,
    last_seen    bigint  NOT NULL,
    PRIMARY KEY (device, boot)
);
