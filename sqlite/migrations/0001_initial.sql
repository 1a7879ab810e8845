-- Migration 1: inlet's SQLite schema as first released (schema version 1). A user-facing contract: see docs/schema.md.
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,  -- insertion order
    received_at INTEGER NOT NULL,     -- server receive time, unix nanoseconds
    device      TEXT    NOT NULL,     -- plain mode: the remote IP address
    transport   TEXT    NOT NULL,     -- 'tcp' or 'udp'
    remote      TEXT    NOT NULL,     -- ip:port the message came from
    boot        TEXT,                 -- acknowledged mode only
    seq         INTEGER,              -- acknowledged mode only
    payload     BLOB    NOT NULL,     -- the bytes exactly as sent
    fields      TEXT                  -- derived fields, a JSON object, or NULL
);
CREATE INDEX messages_device ON messages (device, id);
CREATE UNIQUE INDEX messages_seq ON messages (device, boot, seq) WHERE seq IS NOT NULL;

CREATE TABLE devices (
    device       TEXT PRIMARY KEY,
    messages     INTEGER NOT NULL,
    first_seen   INTEGER NOT NULL,    -- unix nanoseconds
    last_seen    INTEGER NOT NULL,    -- unix nanoseconds
    gaps         INTEGER NOT NULL,    -- separate ranges of counter values never received
    missing      INTEGER NOT NULL,    -- counter values never received
    duplicates   INTEGER NOT NULL,
    resets       INTEGER NOT NULL,
    last_counter INTEGER,             -- highest counter of the current run, NULL if none
    run_low      INTEGER,             -- lowest counter of the current run
    run_seen     INTEGER,             -- bitmap: bit i set when last_counter-i was received
    last_boot    TEXT                 -- acknowledged mode: the boot of the latest sequence
) WITHOUT ROWID;

-- Acknowledged mode: one row per (device, boot) sequence.
CREATE TABLE boots (
    device       TEXT    NOT NULL,
    boot         TEXT    NOT NULL,
    last_seq     INTEGER NOT NULL,    -- highest seq stored
    missing      TEXT    NOT NULL,    -- JSON array of [from, to] ranges never received, below last_seq
    messages     INTEGER NOT NULL,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    PRIMARY KEY (device, boot)
) WITHOUT ROWID;
