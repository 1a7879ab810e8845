package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/postgres"
	"github.com/inletdev/inlet/sqlite"
)

// serveStore is what serve needs of its store, SQLite's or PostgreSQL's.
type serveStore interface {
	inlet.Store
	inlet.Reader
	Ready() bool
	// Prune deletes the messages received before before (unix nanoseconds),
	// off the commit path, and returns how many it deleted.
	Prune(ctx context.Context, before int64) (int64, error)
}

// readStore is what export, devices and tail --db read.
type readStore interface {
	inlet.Reader
	Close() error
}

// openServeStore opens --db for serve: a postgres:// or postgresql:// URL is
// a PostgreSQL database (docs/scale.md), anything else a SQLite file.
func openServeStore(ctx context.Context, db string, logger *slog.Logger) (serveStore, error) {
	if postgres.IsURL(db) {
		return postgres.Open(ctx, db, postgres.Options{Logger: logger})
	}
	s, err := sqlite.Open(ctx, db, sqlite.Options{Logger: logger})
	if err != nil {
		return nil, err
	}
	return sqliteStore{s}, nil
}

// openReader opens --db read-only, as openServeStore chooses.
func openReader(ctx context.Context, db string) (readStore, error) {
	if postgres.IsURL(db) {
		return postgres.Open(ctx, db, postgres.Options{ReadOnly: true})
	}
	return sqlite.Open(ctx, db, sqlite.Options{ReadOnly: true})
}

// openTokenStore opens --db for inlet token, while inlet serve may run on it:
// a PostgreSQL URL as openServeStore chooses (its nodes share the tokens), a
// SQLite file otherwise; either is created or migrated when it needs to be.
func openTokenStore(ctx context.Context, db string) (tokenAdmin, error) {
	if postgres.IsURL(db) {
		return postgres.OpenTokens(ctx, db)
	}
	return sqlite.OpenTokens(ctx, db)
}

// dbName is --db as logs and the ready line show it: a URL without its password.
func dbName(db string) string {
	if postgres.IsURL(db) {
		return postgres.Redact(db)
	}
	return db
}

// sqliteStore gives sqlite.Store serveStore's Prune.
type sqliteStore struct{ *sqlite.Store }

func (s sqliteStore) Prune(ctx context.Context, before int64) (int64, error) {
	return s.Store.Prune(ctx, before, sqlite.PruneOptions{})
}

// followNodes wakes the live hub when other nodes commit, which only a shared
// (PostgreSQL) database has: the hub hears of this node's commits from the
// writer, and the streams (GET /api/stream, the dashboard, inlet tail) read
// every row from the database once woken. It polls the newest id four times a
// second until ctx ends.
func (m *Main) followNodes(ctx context.Context) {
	if _, ok := m.store.(*postgres.Store); !ok {
		return
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id, err := m.store.LastID(ctx)
		if err != nil || id == last {
			continue
		}
		last = id
		m.hub.OnCommit(&inlet.Batch{}) // no messages: a wake-up, not figures
	}
}
