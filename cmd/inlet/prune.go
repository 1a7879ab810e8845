package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/inletdev/inlet/record"
	"github.com/inletdev/inlet/sqlite"
)

func runPrune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("prune", "Delete the messages received before a time, in small transactions, while inlet serve may\n"+
		"keep running. The devices' loss accounting and acknowledged sequences stay as they are:\n"+
		"a pruned range is not missing, and a resend of a pruned reading is not stored again.\n"+
		"The space is reused by new messages (the file does not shrink; see docs/operations.md).\n\n"+
		"Times: RFC 3339 (2026-01-01T00:00:00Z), a date (2026-01-01, UTC), unix seconds, or an age\n"+
		"like 90d, 2w or 36h (that long before now).", stderr)
	db := fs.String("db", "inlet.db", "SQLite database file")
	before := fs.String("before", "", "delete messages received before this time (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *before == "" {
		fmt.Fprintln(stderr, "inlet prune: --before is required, e.g. --before 90d")
		fs.Usage()
		return errUsage
	}
	t, err := parseAge(*before, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "inlet prune: --before: %v\n", err)
		return errUsage
	}
	start := time.Now()
	n, err := sqlite.PruneFile(ctx, *db, t, sqlite.PruneOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "inlet prune: deleted %d messages received before %s in %.1f s\n", n, record.Time(t), time.Since(start).Seconds())
	return nil
}

// parseAge reads a time as record.ParseTime does, and also ages in days or
// weeks (90d, 2w), which time.ParseDuration lacks.
func parseAge(s string, now time.Time) (int64, error) {
	if d, err := parseRetain(s); err == nil {
		return now.Add(-d).UnixNano(), nil
	}
	t, err := record.ParseTime(s, now)
	if err == nil && t == 0 {
		err = errors.New("empty time")
	}
	return t, err
}

// parseRetain reads an age: a Go duration (36h, 90m) or days and weeks (90d, 2w).
func parseRetain(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	if len(s) > 1 {
		if u, ok := unit[s[len(s)-1]]; ok {
			n, err := strconv.ParseFloat(s[:len(s)-1], 64)
			if err != nil || n <= 0 || n > 1e5 {
				return 0, fmt.Errorf("%q: want a positive age like 90d, 2w or 36h", s)
			}
			return time.Duration(n * float64(u)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive age like 90d, 2w or 36h", s)
	}
	return d, nil
}
