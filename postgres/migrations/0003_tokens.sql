-- Migration 3: per-device credentials of acknowledged mode (inlet token, serve --require-token;
-- docs/security.md "Tokens"), as in SQLite's tokens table. Only a digest of each token is kept
-- (wire.TokenHash: SHA-256 over a fixed-size block); the token itself is printed once by
-- `inlet token add` and never stored. Every node on the database reads the same table, so they
-- share the credentials. A user-facing contract: see docs/schema.md.
CREATE TABLE tokens (
    device     text   PRIMARY KEY,  -- an acknowledged device id (never an IP address)
    hash       bytea  NOT NULL,     -- 32 bytes: the token's digest
    created_at bigint NOT NULL,     -- unix nanoseconds
    revoked_at bigint               -- unix nanoseconds; NULL while the token is valid
);

-- One row whose n grows with every change to tokens, whoever makes it (inlet token on any
-- machine, any node, psql by hand): every node reads n every second, and reads the tokens again
-- only when it has moved. The row is raised in the changing transaction, so n moves exactly when
-- the change becomes visible; message commits never touch it.
CREATE TABLE tokens_changes (n bigint NOT NULL);
INSERT INTO tokens_changes (n) VALUES (0);
CREATE FUNCTION inlet_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tokens_changes SET n = n + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER tokens_changed AFTER INSERT OR UPDATE OR DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION inlet_tokens_changed();
CREATE TRIGGER tokens_truncated AFTER TRUNCATE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION inlet_tokens_changed();
