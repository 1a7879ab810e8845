package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/postgres"
	"github.com/inletdev/inlet/sqlite"
)

// migratePage is how many messages migrate copies per transaction.
const migratePage = 10_000

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", "Copy a SQLite database's history into PostgreSQL: every message with its id, and the\n"+
		"devices' and boots' loss accounting and the device tokens, so that inlet serve --db postgres://…\n"+
		"nodes carry on where the SQLite server stopped (docs/scale.md). Stop the SQLite server\n"+
		"first, and run it before any node writes to the PostgreSQL database. Safe to run again:\n"+
		"messages already copied are skipped, and the accounting is copied again (of a device's\n"+
		"token, the row changed last is kept).", stderr)
	from := fs.String("from", "inlet.db", "SQLite database file to copy from (opened read-only)")
	to := fs.String("to", "", "PostgreSQL database to copy to, postgres://… (its schema is created if missing)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !postgres.IsURL(*to) {
		return badUsage(fmt.Errorf("--to %q: want a PostgreSQL URL such as postgres://inlet@db.example/inlet", *to))
	}
	if postgres.IsURL(*from) {
		return badUsage(fmt.Errorf("--from %q: want a SQLite database file", *from))
	}
	src, err := sqlite.Open(ctx, *from, sqlite.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, *to, postgres.Options{})
	if err != nil {
		return err
	}
	defer dst.Close()
	start := time.Now()
	last, err := src.LastID(ctx)
	if err != nil {
		return err
	}
	after, err := dst.ImportedUpTo(ctx, last, func(m *inlet.Stored) (bool, error) {
		same := false
		err := src.Messages(ctx, inlet.Query{AfterID: m.ID - 1, Limit: 1}, func(s *inlet.Stored) error {
			same = s.ID == m.ID && s.Device == m.Device && s.ReceivedAt == m.ReceivedAt && bytes.Equal(s.Payload, m.Payload)
			return nil
		})
		return same, err
	})
	if err != nil {
		return err
	}
	resumed := after
	var copied, skipped int64
	page := make([]inlet.Stored, 0, migratePage)
	for {
		page = page[:0]
		err := src.Messages(ctx, inlet.Query{AfterID: after, Limit: migratePage}, func(m *inlet.Stored) error {
			c := *m
			c.Payload = bytes.Clone(m.Payload)
			c.Fields = bytes.Clone(m.Fields)
			page = append(page, c)
			return nil
		})
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		n, err := dst.ImportMessages(ctx, page)
		if err != nil {
			return err
		}
		copied += n
		skipped += int64(len(page)) - n
		after = page[len(page)-1].ID
		if isTerminal(stderr) {
			fmt.Fprintf(stderr, "\rinlet migrate: messages up to id %d of %d", after, last)
		}
	}
	if isTerminal(stderr) {
		fmt.Fprintln(stderr)
	}
	devs, err := src.Devices(ctx)
	if err != nil {
		return err
	}
	boots, err := src.Boots(ctx)
	if err != nil {
		return err
	}
	if err := dst.ImportState(ctx, devs, boots); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("messages copied, accounting not (run inlet migrate again): %w", err)
	}
	toks, err := src.Tokens(ctx)
	if err != nil {
		return err
	}
	if _, err := dst.ImportTokens(ctx, toks); err != nil {
		return fmt.Errorf("messages and accounting copied, device tokens not (run inlet migrate again): %w", err)
	}
	fmt.Fprintf(stdout, "inlet migrate: messages up to id %d: %d copied, %d already there (resumed after id %d); accounting of %d devices and %d boots copied; %d device tokens; %.1f s\n",
		last, copied, skipped, resumed, len(devs), len(boots), len(toks), time.Since(start).Seconds())
	return nil
}
