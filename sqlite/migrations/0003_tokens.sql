-- Migration: per-device credentials of acknowledged mode (inlet token, serve --require-token;
-- docs/security.md "Tokens"). Only a digest of each token is kept (wire.TokenHash: SHA-256 over a
-- fixed-size block); the token itself is printed once by `inlet token add` and never stored.
CREATE TABLE tokens (
    device     TEXT PRIMARY KEY,  -- an acknowledged device id (never an IP address)
    hash       BLOB NOT NULL,     -- 32 bytes: the token's digest
    created_at INTEGER NOT NULL,  -- unix nanoseconds
    revoked_at INTEGER            -- unix nanoseconds; NULL while the token is valid
) WITHOUT ROWID;

-- One row whose n grows with every change to tokens, whoever makes it (inlet token in another
-- process, another node, sqlite3 by hand): a running server reads n every second, and reads the
-- tokens again only when it has changed.
CREATE TABLE tokens_changes (n INTEGER NOT NULL);
INSERT INTO tokens_changes (n) VALUES (0);
CREATE TRIGGER tokens_inserted AFTER INSERT ON tokens BEGIN UPDATE tokens_changes SET n = n + 1; END;
CREATE TRIGGER tokens_updated AFTER UPDATE ON tokens BEGIN UPDATE tokens_changes SET n = n + 1; END;
CREATE TRIGGER tokens_deleted AFTER DELETE ON tokens BEGIN UPDATE tokens_changes SET n = n + 1; END;
