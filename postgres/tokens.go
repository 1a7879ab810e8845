package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/inletdev/inlet"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Per-device credentials of acknowledged mode (docs/security.md, "Tokens"),
// as in the sqlite package: table tokens holds each device's token digest,
// never the token, and every node on the database reads the same table, so
// nodes that share a database share the credentials. inlet token writes it
// from any machine while the nodes run; each node reads the table again
// whenever TokensVersion changes (a counter row that a trigger raises in the
// transaction of every change, whoever makes it).

// OpenTokens opens the database at url for inlet token, while nodes may be
// running on it: a pool of its own, no writer. An empty database gets the
// schema, and an older one is migrated, as inlet serve would (under the same
// migration lock). It refuses a server whose commits are not durable
// (ErrNotDurable), as Open does: a revocation must not be lost in a crash.
func OpenTokens(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", Redact(url), err)
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", Redact(url), err)
	}
	err = migrate(ctx, pool, ladder)
	if err == nil {
		err = pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error { return checkDurable(ctx, c.Conn()) })
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: tokens: open %s: %w", Redact(url), err)
	}
	opt := Options{ReadOnly: true, Logger: slog.New(slog.DiscardHandler)}
	return &Store{url: url, pool: pool, opt: opt, known: make(map[string]int64)}, nil
}

// AddToken stores hash as device's token digest, created at (unix
// nanoseconds). A device whose token is valid keeps it, with
// inlet.ErrTokenExists, unless replace; a revoked one is replaced.
func (s *Store) AddToken(ctx context.Context, device string, hash []byte, at int64, replace bool) error {
	q, err := s.q()
	if err != nil {
		return fmt.Errorf("postgres: add token of %s: %w", device, err)
	}
	tag, err := q.Exec(ctx, `INSERT INTO tokens (device, hash, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (device) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at, revoked_at = NULL
		WHERE $4 OR tokens.revoked_at IS NOT NULL`, device, hash, at, replace)
	if err != nil {
		return fmt.Errorf("postgres: add token of %s: %w", device, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: add token of %s: %w", device, inlet.ErrTokenExists)
	}
	return nil
}

// RevokeToken marks device's token revoked at (unix nanoseconds); the row is
// kept, so that inlet token list shows it and the device stays refused.
// inlet.ErrNoToken when the device has no valid token.
func (s *Store) RevokeToken(ctx context.Context, device string, at int64) error {
	q, err := s.q()
	if err != nil {
		return fmt.Errorf("postgres: revoke token of %s: %w", device, err)
	}
	tag, err := q.Exec(ctx, "UPDATE tokens SET revoked_at = $1 WHERE device = $2 AND revoked_at IS NULL", at, device)
	if err != nil {
		return fmt.Errorf("postgres: revoke token of %s: %w", device, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: revoke token of %s: %w", device, inlet.ErrNoToken)
	}
	return nil
}

// Tokens returns every device's token, valid and revoked, by device.
func (s *Store) Tokens(ctx context.Context) ([]inlet.Token, error) {
	q, err := s.q()
	if err != nil {
		return nil, fmt.Errorf("postgres: tokens: %w", err)
	}
	rows, err := q.Query(ctx, "SELECT device, hash, created_at, coalesce(revoked_at, 0) FROM tokens ORDER BY device COLLATE \"C\"")
	if err != nil {
		return nil, fmt.Errorf("postgres: tokens: %w", err)
	}
	var out []inlet.Token
	var t inlet.Token
	_, err = pgx.ForEachRow(rows, []any{&t.Device, &t.Hash, &t.CreatedAt, &t.RevokedAt}, func() error {
		c := t
		c.Hash = append([]byte(nil), t.Hash...)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: tokens: %w", err)
	}
	return out, nil
}

// TokensVersion is a number that changes whenever table tokens does, from any
// connection on any machine: a node polls it (one row) and reads Tokens again
// when it moves.
func (s *Store) TokensVersion(ctx context.Context) (int64, error) {
	q, err := s.q()
	if err != nil {
		return 0, fmt.Errorf("postgres: tokens version: %w", err)
	}
	var n int64
	if err := q.QueryRow(ctx, "SELECT n FROM tokens_changes").Scan(&n); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			err = errors.New("tokens_changes has no row (deleted by hand?)")
		}
		return 0, fmt.Errorf("postgres: tokens version: %w", err)
	}
	return n, nil
}

// ImportTokens copies another store's tokens (inlet migrate), in one
// statement. Of a device already in the database, the row whose last change
// (made or revoked) is later wins: a copy run again takes a revocation made in
// the source since, and keeps one made in this database. It returns how many
// rows it wrote.
func (s *Store) ImportTokens(ctx context.Context, toks []inlet.Token) (int64, error) {
	q, err := s.q()
	if err != nil {
		return 0, fmt.Errorf("postgres: import tokens: %w", err)
	}
	if len(toks) == 0 {
		return 0, nil
	}
	n := len(toks)
	dev, hash, made, revoked := make([]string, n), make([][]byte, n), make([]int64, n), make([]*int64, n)
	for i, t := range toks {
		dev[i], hash[i], made[i] = t.Device, t.Hash, t.CreatedAt
		if t.RevokedAt != 0 {
			revoked[i] = &toks[i].RevokedAt
		}
	}
	tag, err := q.Exec(ctx, `INSERT INTO tokens (device, hash, created_at, revoked_at)
		SELECT * FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::bigint[])
		ON CONFLICT (device) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at, revoked_at = excluded.revoked_at
		WHERE greatest(excluded.created_at, excluded.revoked_at) > greatest(tokens.created_at, tokens.revoked_at)`,
		dev, hash, made, revoked)
	if err != nil {
		return 0, fmt.Errorf("postgres: import tokens: %w", err)
	}
	return tag.RowsAffected(), nil
}
