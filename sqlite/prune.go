package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"
)

// PruneOptions tune Prune. The zero value is sensible.
type PruneOptions struct {
	// BatchRows is how many ids one DELETE transaction covers (default 2000):
	// small enough that the commit writer, which waits for the write lock
	// meanwhile, sees no stall worth measuring.
	BatchRows int64
	// Pause between transactions (default 5 ms), so commits go first.
	Pause time.Duration
}

// Prune deletes the messages received before the unix-nanosecond time before, in
// small transactions off the commit path, and returns how many it deleted. The
// devices' loss accounting and the acknowledged sequences (tables devices and
// boots) are not touched: a pruned range is not "missing", and a resend of a
// pruned seq is still recognised as a duplicate by its boot's last_seq, so it is
// acknowledged and not stored again. The freed pages are reused by new rows, so
// under a retention policy the file stops growing.
func (s *Store) Prune(ctx context.Context, before int64, opt PruneOptions) (int64, error) {
	if opt.BatchRows <= 0 {
		opt.BatchRows = 2000
	}
	if opt.Pause <= 0 {
		opt.Pause = 5 * time.Millisecond
	}
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
			res, err := s.db.ExecContext(ctx, "DELETE FROM "+table+" WHERE id > ? AND id <= ? AND received_at < ?", from, to, before)
			if err != nil {
				return deleted, fmt.Errorf("sqlite: prune messages %d to %d: %w", from+1, to, err)
			}
			n, _ := res.RowsAffected()
			deleted += n
		}
		select {
		case <-ctx.Done():
			return deleted, ctx.Err()
		case <-time.After(opt.Pause):
		}
	}
	return deleted, nil
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
