-- Migration 6: a layout whose disk writes per commit follow the batch's size, not the number of
-- devices in it (docs/schema.md, "How rows are stored"). A commit appends its rows to messages_recent
-- (no index) and the new state of the devices and boots it touched to state_log; from time to time
-- both are merged, in one transaction, into the indexed tables (messages_merged with the indexes
-- messages_device and messages_seq, device_state, boot_state). The views messages, devices and boots
-- show both halves, so queries written against versions 1 and 2 read the same rows.
ALTER TABLE messages RENAME TO messages_merged;
ALTER TABLE devices RENAME TO device_state;
ALTER TABLE boots RENAME TO boot_state;

CREATE TABLE messages_recent (
    id          INTEGER PRIMARY KEY,  -- continues messages_merged's ids
    received_at INTEGER NOT NULL,
    device      TEXT    NOT NULL,
    transport   TEXT    NOT NULL,
    remote      TEXT    NOT NULL,
    boot        TEXT,
    seq         INTEGER,
    payload     BLOB    NOT NULL,
    fields      TEXT
);

-- The new state of each device (boot IS NULL) and each acknowledged sequence (boot NOT NULL) a commit
-- touched, appended; the row with the highest id of a key is its current state.
CREATE TABLE state_log (
    id           INTEGER PRIMARY KEY,
    device       TEXT    NOT NULL,
    boot         TEXT,
    messages     INTEGER NOT NULL,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    gaps         INTEGER,             -- device rows: the columns of device_state
    missing      INTEGER,
    duplicates   INTEGER,
    resets       INTEGER,
    last_counter INTEGER,
    run_low      INTEGER,
    run_seen     INTEGER,
    last_boot    TEXT,
    kind         TEXT,
    counting     TEXT,
    last_seq     INTEGER,             -- boot rows: boot_state's last_seq and missing
    ranges       TEXT
);

CREATE VIEW messages AS
    SELECT id, received_at, device, transport, remote, boot, seq, payload, fields FROM messages_merged
    UNION ALL
    SELECT id, received_at, device, transport, remote, boot, seq, payload, fields FROM messages_recent;

CREATE VIEW devices AS
    SELECT device, messages, first_seen, last_seen, gaps, missing, duplicates, resets,
           last_counter, run_low, run_seen, last_boot, kind, counting
    FROM device_state WHERE device NOT IN (SELECT device FROM state_log WHERE boot IS NULL)
    UNION ALL
    SELECT device, messages, first_seen, last_seen, gaps, missing, duplicates, resets,
           last_counter, run_low, run_seen, last_boot, kind, counting
    FROM (SELECT max(id) AS id, device, messages, first_seen, last_seen, gaps, missing, duplicates, resets,
                 last_counter, run_low, run_seen, last_boot, kind, counting
          FROM state_log WHERE boot IS NULL GROUP BY device);

CREATE VIEW boots AS
    SELECT device, boot, last_seq, missing, messages, first_seen, last_seen
    FROM boot_state WHERE (device, boot) NOT IN (SELECT device, boot FROM state_log WHERE boot IS NOT NULL)
    UNION ALL
    SELECT device, boot, last_seq, ranges AS missing, messages, first_seen, last_seen
    FROM (SELECT max(id) AS id, device, boot, last_seq, ranges, messages, first_seen, last_seen
          FROM state_log WHERE boot IS NOT NULL GROUP BY device, boot);
