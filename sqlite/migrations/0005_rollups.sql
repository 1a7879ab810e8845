-- Migration 5 (rollups): per device, minute and hour, and numeric field: count, min, max and sum of the
-- values, kept beyond the raw retention (docs/schema.md, "rollups"). field '' is the bucket's rows: n
-- rows, min/max/sum of their receive times in seconds after the bucket's start.
CREATE TABLE rollups (
    device TEXT    NOT NULL,
    step   INTEGER NOT NULL,  -- 60 or 3600 seconds
    bucket INTEGER NOT NULL,  -- unix seconds, a multiple of step
    field  TEXT    NOT NULL,  -- '' for the rows themselves
    n      INTEGER NOT NULL,
    min    REAL    NOT NULL,
    max    REAL    NOT NULL,
    sum    REAL    NOT NULL,
    PRIMARY KEY (device, step, bucket, field)
) WITHOUT ROWID;

-- One row: minute buckets before frontier (unix seconds, a multiple of 60), and hour buckets before
-- frontier's hour, are in rollups; later ones are kept in memory by the writer and rebuilt from the
-- messages at start. last_id is the highest message id when rollups was last written.
CREATE TABLE rollup_state (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    frontier INTEGER NOT NULL,
    last_id  INTEGER NOT NULL
);

-- The rollups of the rows already stored, all of them but the newest minute's.
INSERT INTO rollup_state (one, frontier, last_id)
SELECT 1, coalesce(max(received_at) / 60000000000 * 60, 0), coalesce(max(id), 0) FROM messages;

INSERT INTO rollups (device, step, bucket, field, n, min, max, sum)
SELECT device, 60, received_at / 60000000000 * 60 AS b, '', count(*),
       min((received_at - received_at / 60000000000 * 60000000000) / 1e9),
       max((received_at - received_at / 60000000000 * 60000000000) / 1e9),
       total((received_at - received_at / 60000000000 * 60000000000) / 1e9)
FROM messages WHERE received_at / 60000000000 * 60 < (SELECT frontier FROM rollup_state)
GROUP BY device, b;

INSERT INTO rollups (device, step, bucket, field, n, min, max, sum)
SELECT m.device, 60, m.received_at / 60000000000 * 60 AS b, j.key, count(*), min(j.value), max(j.value), total(j.value)
FROM messages m, json_each(CASE WHEN json_valid(m.fields) THEN m.fields END) j
WHERE j.type IN ('integer', 'real') AND j.key != ''
  AND m.received_at / 60000000000 * 60 < (SELECT frontier FROM rollup_state)
GROUP BY m.device, b, j.key;

INSERT INTO rollups (device, step, bucket, field, n, min, max, sum)
SELECT device, 3600, bucket / 3600 * 3600 AS h, field, sum(n),
       min(CASE field WHEN '' THEN min + (bucket - bucket / 3600 * 3600) ELSE min END),
       max(CASE field WHEN '' THEN max + (bucket - bucket / 3600 * 3600) ELSE max END),
       total(CASE field WHEN '' THEN sum + n * (bucket - bucket / 3600 * 3600) ELSE sum END)
FROM rollups WHERE step = 60 AND bucket < (SELECT frontier / 3600 * 3600 FROM rollup_state)
GROUP BY device, h, field;
