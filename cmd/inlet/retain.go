package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/inletdev/inlet/record"
	"github.com/inletdev/inlet/sqlite"
)

// retainEvery is how often serve --retain prunes (more often for a retention
// shorter than 20 minutes: twice per period); the first prune runs a few seconds
// after start.
const retainEvery = 10 * time.Minute

// sizeEvery is how often serve --max-db-size compares the pages in use with
// the bound; minMaxDBSize is the smallest bound taken. lowWater is the share
// of the bound a size prune brings the pages in use down to, so that it does
// not run again a minute later.
const (
	sizeEvery    = time.Minute
	minMaxDBSize = 1e6
	lowWater     = 0.9
)

// startRetention prunes now and then, off the commit path (sqlite's Prune
// deletes in small transactions): messages older than --retain, and the oldest
// ones while the database takes more than --max-db-size. It returns a function
// that stops it and waits for a prune under way to end.
func (m *Main) startRetention() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := retainEvery
		for _, r := range []time.Duration{m.Config.Retain, m.Config.RetainRollups} {
			if r > 0 {
				every = min(every, r/2)
			}
		}
		if m.Config.MaxDBSize > 0 {
			every = min(every, sizeEvery)
		}
		wait := min(5*time.Second, every)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = every
			if m.Config.Retain > 0 && !m.pruneAge(ctx) {
				return
			}
			if m.Config.MaxDBSize > 0 && !m.pruneSize(ctx) {
				return
			}
			if m.Config.RetainRollups > 0 && !m.pruneRollups(ctx) {
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}

// pruneAge deletes the messages older than --retain; false when ctx ended.
func (m *Main) pruneAge(ctx context.Context) bool {
	before := time.Now().Add(-m.Config.Retain).UnixNano()
	start := time.Now()
	n, err := m.store.Prune(ctx, before)
	switch {
	case ctx.Err() != nil:
		return false
	case err != nil:
		m.Logger.Error("retention: prune failed; trying again later", "err", err)
	case n > 0:
		m.Logger.Info("retention: deleted old messages", "deleted", n, "before", record.Time(before),
			"took", time.Since(start).Round(time.Millisecond))
	}
	return true
}

// pruneRollups deletes the rollups of buckets older than --retain-rollups;
// false when ctx ended.
func (m *Main) pruneRollups(ctx context.Context) bool {
	store, ok := m.store.(interface {
		PruneRollups(ctx context.Context, before int64) (int64, error)
	})
	if !ok {
		return true // a store without rollups (PostgreSQL): nothing to prune
	}
	before := time.Now().Add(-m.Config.RetainRollups).UnixNano()
	n, err := store.PruneRollups(ctx, before)
	switch {
	case ctx.Err() != nil:
		return false
	case err != nil:
		m.Logger.Error("retention: prune rollups failed; trying again later", "err", err)
	case n > 0:
		m.Logger.Info("retention: deleted old rollups", "deleted", n, "before", record.Time(before))
	}
	return true
}

// pruneSize deletes the oldest messages while the pages in use exceed
// --max-db-size, down to lowWater of it; false when ctx ended.
func (m *Main) pruneSize(ctx context.Context) bool {
	store, ok := m.store.(sizedStore)
	if !ok {
		return true // refused at start (Validate): only a SQLite file has a size
	}
	used, err := store.UsedBytes(ctx)
	switch {
	case ctx.Err() != nil:
		return false
	case err != nil:
		m.Logger.Error("retention: database size unknown; trying again later", "err", err)
		return true
	case used <= m.Config.MaxDBSize:
		return true
	}
	start := time.Now()
	target := int64(float64(m.Config.MaxDBSize) * lowWater)
	n, oldest, err := store.PruneToSize(ctx, target, sqlite.PruneOptions{})
	switch {
	case ctx.Err() != nil:
		return false
	case errors.Is(err, sqlite.ErrNothingToPrune):
		m.Logger.Warn("retention: every message deleted and the database still exceeds --max-db-size; raise it",
			"max_db_size", m.Config.MaxDBSize, "deleted", n, "err", err)
	case err != nil:
		m.Logger.Error("retention: prune to size failed; trying again later", "err", err, "deleted", n)
	default:
		m.Logger.Info("retention: deleted the oldest messages (--max-db-size)", "deleted", n, "used_before", used,
			"target", target, "oldest_kept", record.Time(oldest), "took", time.Since(start).Round(time.Millisecond))
	}
	return true
}

// sizedStore is a store whose size --max-db-size bounds: a SQLite file.
type sizedStore interface {
	UsedBytes(ctx context.Context) (int64, error)
	PruneToSize(ctx context.Context, target int64, opt sqlite.PruneOptions) (deleted, oldest int64, err error)
}

// addMaxDBSizeFlag adds serve's --max-db-size.
func addMaxDBSizeFlag(fs *flag.FlagSet, cfg *Config) {
	fs.Func("max-db-size", "when the database file grows past this size (e.g. 20GB, 500MB, 2GiB), delete the oldest\n"+
		"messages until it is 10% under it, checked every minute, off the commit path (docs/operations.md) (default: no bound)", func(s string) error {
		n, err := parseSize(s)
		cfg.MaxDBSize = n
		return err
	})
}

// parseSize reads a size in bytes: a number with an optional unit, decimal
// (kB, MB, GB, TB) or binary (KiB, MiB, GiB, TiB), case-insensitive.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}[unit]
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || n <= 0 || n*mult > 1<<62 {
		return 0, fmt.Errorf("%q: want a size like 20GB, 500MB or 2GiB", s)
	}
	if n*mult < minMaxDBSize {
		return 0, fmt.Errorf("%q: want at least 1MB (an empty database already takes a few pages)", s)
	}
	return int64(n * mult), nil
}
