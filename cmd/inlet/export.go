package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/record"
)

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export", "Write stored messages, oldest first, as NDJSON (one JSON object a line) or CSV.\n"+
		"Safe to run while inlet serve is writing to the same database.\n"+
		"Times (--since, --until): RFC 3339 (2026-11-29T08:00:00Z), a date (2026-11-29, UTC),\n"+
		"unix seconds, or a duration meaning that long ago (15m, 2h).", stderr)
	db := fs.String("db", "inlet.db", "SQLite database file, or a PostgreSQL database postgres://…")
	device := fs.String("device", "", "only this device")
	since := fs.String("since", "", "only messages received at or after this time")
	until := fs.String("until", "", "only messages received before this time")
	format := fs.String("format", "ndjson", "ndjson or csv")
	limit := fs.Int("limit", 0, "at most this many messages (0: all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *limit < 0 {
		return badUsage(fmt.Errorf("--limit %d: want 0 (all) or more", *limit))
	}
	now := time.Now()
	q := inlet.Query{Device: *device, Limit: *limit}
	var err error
	if q.Since, err = record.ParseTime(*since, now); err != nil {
		return badUsage(fmt.Errorf("--since: %w", err))
	}
	if q.Until, err = record.ParseTime(*until, now); err != nil {
		return badUsage(fmt.Errorf("--until: %w", err))
	}
	if *format != "ndjson" && *format != "csv" {
		return badUsage(fmt.Errorf("--format %q: want ndjson or csv", *format))
	}
	store, err := openReader(ctx, *db)
	if err != nil {
		return err
	}
	defer store.Close()
	bw := bufio.NewWriterSize(stdout, 64<<10)
	var write func(*inlet.Stored) error
	var flush func() error
	if *format == "csv" {
		cw := csv.NewWriter(bw)
		if err := cw.Write(record.CSVHeader); err != nil {
			return err
		}
		write = func(m *inlet.Stored) error { return cw.Write(record.CSV(m)) }
		flush = func() error { cw.Flush(); return cw.Error() }
	} else {
		var line []byte
		write = func(m *inlet.Stored) error {
			line = append(record.AppendJSON(line[:0], m), '\n')
			_, err := bw.Write(line)
			return err
		}
		flush = func() error { return nil }
	}
	err = store.Messages(ctx, q, write)
	if ferr := flush(); err == nil {
		err = ferr
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}
