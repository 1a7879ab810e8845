package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"
)

// PruneOptions tune Prune. The zero value is sensible.
type PruneOptions struct {
	// BatchRows is how many ids one DELETE transaction covers (default
	// DefaultPruneBatch): small enough that a commit that has to wait for one
	// sees no stall worth measuring (BENCHMARKS.md, "Commit time during a
	// prune").
	BatchRows int64
	// Pause between transactions (default 5 ms), so commits go first.
	Pause time.Duration
}

// DefaultPruneBatch is PruneOptions.BatchRows' default.
const DefaultPruneBatch = 500

// pruneShare is the most of the writer's time a prune takes: after a batch
// that took d it waits (1/pruneShare - 1) × d, at least Pause, so commits
// find the writer's connection free at least that share of the time however
// slow the disk is.
const pruneShare = 0.2

// yield waits between two batches of a prune, the last of which took took.
func (o PruneOptions) yield(ctx context.Context, took time.Duration) error {
	wait := max(o.Pause, time.Duration(float64(took)*(1/pruneShare-1)))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
		return nil
	}
}

func (o PruneOptions) withDefaults() PruneOptions {
	if o.BatchRows <= 0 {
		o.BatchRows = DefaultPruneBatch
	}
	if o.Pause <= 0 {
		o.Pause = 5 * time.Millisecond
	}
	return o
}

// Prune deletes the messages received before the unix-nanosecond time before, in
// small transactions off the commit path, and returns how many it deleted. The
// devices' loss accounting and the acknowledged sequences (tables devices and
// boots) are not touched: a pruned range is not "missing", and a resend of a
// pruned seq is still recognised as a duplicate by its boot's last_seq, so it is
// acknowledged and not stored again. The freed pages are reused by new rows, so
// under a retention policy the file stops growing.
func (s *Store) Prune(ctx context.Context, before int64, opt PruneOptions) (int64, error) {
	opt = opt.withDefaults()
	// Rows are in id order and received_at follows it within timeSlack, so the
	// rows to delete lie in an id prefix: find an end past which every row is
	// received at or after before (binary search, no scan), then delete the
	// prefix in id ranges; the received_at condition keeps the rows near the end
	// that were received at or after before.
	var lo, hi, hiAt sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT min(lo), max(hi), coalesce((SELECT received_at FROM messages_recent ORDER BY id DESC LIMIT 1),
		(SELECT received_at FROM messages_merged ORDER BY id DESC LIMIT 1)) FROM
		(SELECT min(id) AS lo, max(id) AS hi FROM messages_merged UNION ALL SELECT min(id), max(id) FROM messages_recent)`).Scan(&lo, &hi, &hiAt); err != nil {
		return 0, fmt.Errorf("sqlite: prune: %w", err)
	}
	if !lo.Valid {
		return 0, nil
	}
	end := hi.Int64 // every row, when even the newest is older than the bound
	if hiAt.Int64 >= before+timeSlack {
		var err error
		if end, err = s.firstIDAt(ctx, before+2*timeSlack); err != nil {
			return 0, fmt.Errorf("sqlite: prune: %w", err)
		}
	}
	var deleted int64
	for from := lo.Int64 - 1; from < end; from += opt.BatchRows {
		to := min(from+opt.BatchRows, end)
		// Either half of the layout (docs/schema.md) may hold the range.
		for _, table := range [...]string{"messages_merged", "messages_recent"} {
			n, took, err := s.pruneBatch(ctx, "DELETE FROM "+table+" WHERE id > ? AND id <= ? AND received_at < ?", from, to, before)
			if err != nil {
				return deleted, fmt.Errorf("sqlite: prune messages %d to %d: %w", from+1, to, err)
			}
			deleted += n
			if err := opt.yield(ctx, took); err != nil {
				return deleted, err
			}
		}
	}
	return deleted, nil
}

// pruneBatch runs one DELETE transaction of a prune. In a server it runs on
// the commit writer's own connection: database/sql holds that connection for
// a whole commit (Commit runs inside Conn.Raw), so a commit and a prune batch
// take turns on a mutex, and a commit that arrives during a batch starts the
// moment the batch ends. On a connection of its own, the commit would meet
// SQLite's write lock instead, and its busy handler sleeps 1, 2, 5, 10, 15,
// 20, 25 ms... between tries: a commit waiting for a 10 ms batch could wait
// 18 ms or more, and with several batches in a row, far longer. Then the pages
// the batch wrote to the WAL are checkpointed at once, on a reader's
// connection (a passive checkpoint waits for nobody and blocks no writer):
// otherwise they would push the WAL past SQLite's automatic checkpoint in the
// middle of a commit, which would then copy them to the database file before
// it returns.
//
// It returns how many rows it deleted and how long the DELETE took (waiting
// for a commit to end included; the checkpoint, which holds no writer back,
// not).
func (s *Store) pruneBatch(ctx context.Context, query string, args ...any) (int64, time.Duration, error) {
	start := time.Now()
	if s.w == nil { // inlet prune beside a server: SQLite's locks are all there is
		res, err := s.db.ExecContext(ctx, query, args...)
		if err != nil {
			return 0, 0, err
		}
		n, _ := res.RowsAffected()
		return n, time.Since(start), nil
	}
	res, err := s.w.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, 0, err
	}
	took := time.Since(start)
	n, _ := res.RowsAffected()
	if _, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		return n, took, fmt.Errorf("checkpoint: %w", err)
	}
	return n, took, nil
}

// PruneFile runs Prune on the database at path from a process of its own (inlet
// prune), beside a server that may be writing to it: it takes no writer's lock
// and migrates nothing, and refuses a database of another schema version.
func PruneFile(ctx context.Context, path string, before int64, opt PruneOptions) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("sqlite: prune: no database at %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune: open %s: %w", path, err)
	}
	defer db.Close()
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return 0, fmt.Errorf("sqlite: prune: %s: %w", path, err)
	}
	if err := checkVersion(version); err != nil {
		return 0, fmt.Errorf("sqlite: prune: %s: %w", path, err)
	}
	s := &Store{db: db}
	return s.Prune(ctx, before, opt)
}

// UsedBytes is how much of the database file its pages in use take: the
// file's size less its free pages. A prune frees pages without shrinking the
// file (new rows reuse them), so this, not the file's size, is what a size
// bound (serve --max-db-size) compares.
func (s *Store) UsedBytes(ctx context.Context) (int64, error) {
	var pages, free, size int64
	err := s.db.QueryRowContext(ctx, "SELECT (SELECT page_count FROM pragma_page_count), "+
		"(SELECT freelist_count FROM pragma_freelist_count), (SELECT page_size FROM pragma_page_size)").Scan(&pages, &free, &size)
	if err != nil {
		return 0, fmt.Errorf("sqlite: pages in use: %w", err)
	}
	return (pages - free) * size, nil
}

// ErrNothingToPrune is returned by PruneToSize when every message is deleted
// and the pages in use still exceed the target: what is left is the devices'
// accounting and the tables of other features, which a prune does not touch.
var ErrNothingToPrune = errors.New("sqlite: no messages left to prune")

// PruneToSize deletes the oldest messages, in the small transactions of
// Prune, until the pages in use (UsedBytes) take at most target bytes, and
// returns how many it deleted and the receive time of the oldest message left
// (0 when none is). The devices' accounting is kept as Prune keeps it.
func (s *Store) PruneToSize(ctx context.Context, target int64, opt PruneOptions) (deleted, oldest int64, err error) {
	opt = opt.withDefaults()
	for {
		used, err := s.UsedBytes(ctx)
		if err != nil {
			return deleted, 0, err
		}
		var lo, at sql.NullInt64
		if err := s.db.QueryRowContext(ctx, "SELECT id, received_at FROM messages ORDER BY id LIMIT 1").Scan(&lo, &at); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return deleted, 0, fmt.Errorf("sqlite: prune to size: %w", err)
		}
		if used <= target {
			return deleted, at.Int64, nil
		}
		if !lo.Valid {
			return deleted, 0, fmt.Errorf("%w: %d bytes in use, want at most %d", ErrNothingToPrune, used, target)
		}
		for _, table := range [...]string{"messages_merged", "messages_recent"} {
			n, took, err := s.pruneBatch(ctx, "DELETE FROM "+table+" WHERE id >= ? AND id < ?", lo.Int64, lo.Int64+opt.BatchRows)
			if err != nil {
				return deleted, 0, fmt.Errorf("sqlite: prune messages %d to %d: %w", lo.Int64, lo.Int64+opt.BatchRows-1, err)
			}
			deleted += n
			if err := opt.yield(ctx, took); err != nil {
				return deleted, 0, err
			}
		}
	}
}
