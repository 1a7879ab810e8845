package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"

	"github.com/inletdev/inlet"
)

// Per-device credentials of acknowledged mode (docs/security.md, "Tokens"):
// table tokens holds each device's token digest, never the token. inlet token
// writes it from its own process while inlet serve runs; serve reads the table
// again whenever TokensVersion changes (a counter that triggers raise on every
// change, whoever makes it).

// Token is one device's credential as stored: inlet.Token, which the
// PostgreSQL store returns too.
type Token = inlet.Token

var (
	// ErrTokenExists: AddToken without replace for a device with a valid token.
	ErrTokenExists = inlet.ErrTokenExists
	// ErrNoToken: RevokeToken for a device without a valid token.
	ErrNoToken = inlet.ErrNoToken
)

// OpenTokens opens the database at path for inlet token, while inlet serve may
// be running on it: it takes no writer's lock, and its writes are single
// statements that wait for the server's commits (busy timeout). A missing
// database is created, and an older one migrated, as inlet serve would (that
// needs no server to hold it, and fails with ErrInUse if one does).
func OpenTokens(ctx context.Context, path string) (*Store, error) {
	if v, err := fileVersion(ctx, path); err != nil || v < schemaVersion {
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sqlite: tokens: %w", err)
		}
		s, err := Open(ctx, path, Options{})
		if err != nil {
			return nil, err
		}
		if err := s.Close(); err != nil {
			return nil, err
		}
	}
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: tokens: open %s: %w", path, err)
	}
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: tokens: %s: %w", path, err)
	}
	if err := checkVersion(version); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: tokens: %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// fileVersion reads the schema version of an existing database file without
// creating one; os.ErrNotExist when there is none.
func fileVersion(ctx context.Context, path string) (int, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	db, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var v int
	err = db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// AddToken stores hash as device's token digest, created at (unix
// nanoseconds). A device whose token is valid keeps it, with ErrTokenExists,
// unless replace; a revoked one is replaced.
func (s *Store) AddToken(ctx context.Context, device string, hash []byte, at int64, replace bool) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO tokens (device, hash, created_at) VALUES (?, ?, ?)
		ON CONFLICT (device) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at, revoked_at = NULL
		WHERE ? OR tokens.revoked_at IS NOT NULL`, device, hash, at, replace)
	if err != nil {
		return fmt.Errorf("sqlite: add token of %s: %w", device, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: add token of %s: %w", device, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: add token of %s: %w", device, ErrTokenExists)
	}
	return nil
}

// RevokeToken marks device's token revoked at (unix nanoseconds); the row is
// kept, so that inlet token list shows it and the device stays refused.
func (s *Store) RevokeToken(ctx context.Context, device string, at int64) error {
	res, err := s.db.ExecContext(ctx, "UPDATE tokens SET revoked_at = ? WHERE device = ? AND revoked_at IS NULL", at, device)
	if err != nil {
		return fmt.Errorf("sqlite: revoke token of %s: %w", device, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: revoke token of %s: %w", device, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: revoke token of %s: %w", device, ErrNoToken)
	}
	return nil
}

// Tokens returns every device's token, valid and revoked, by device.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT device, hash, created_at, coalesce(revoked_at, 0) FROM tokens ORDER BY device")
	if err != nil {
		return nil, fmt.Errorf("sqlite: tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		if err := rows.Scan(&t.Device, &t.Hash, &t.CreatedAt, &t.RevokedAt); err != nil {
			return nil, fmt.Errorf("sqlite: tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: tokens: %w", err)
	}
	return out, nil
}

// TokensVersion is a number that changes whenever table tokens does, from any
// process: a server polls it (one row) and reads Tokens again when it moves.
func (s *Store) TokensVersion(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT n FROM tokens_changes").Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: tokens version: %w", err)
	}
	return n, nil
}
