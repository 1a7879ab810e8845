package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/inletdev/inlet/sqlite"
)

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backup", "Usage: inlet backup [--db inlet.db] FILE\n\n"+
		"Write a consistent copy of the database to FILE while inlet serve keeps running: it holds\n"+
		"every message committed (and so acknowledged) before the backup started. FILE must not\n"+
		"exist. To restore, stop the server and copy FILE over the database (remove its -wal and\n"+
		"-shm files first). See docs/operations.md.", stderr)
	db := fs.String("db", "inlet.db", "SQLite database file to copy")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "inlet backup: name one file to write, e.g. inlet backup inlet-"+time.Now().Format("2006-01-02")+".db")
		fs.Usage()
		return errUsage
	}
	dst := fs.Arg(0)
	start := time.Now()
	var progress func(done, total int64)
	if isTerminal(stderr) {
		progress = func(done, total int64) {
			fmt.Fprintf(stderr, "\rinlet backup: %s of at most %s", mib(done), mib(total))
		}
	}
	err := sqlite.Backup(ctx, *db, dst, progress)
	if progress != nil {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return err
	}
	st, err := sqlite.Open(ctx, dst, sqlite.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("backup written to %s, but it does not open: %w", dst, err)
	}
	defer st.Close()
	last, err := st.LastID(ctx)
	if err != nil {
		return fmt.Errorf("backup written to %s, but it cannot be read: %w", dst, err)
	}
	fmt.Fprintf(stdout, "inlet backup: wrote %s (messages up to id %d) in %.1f s\n", dst, last, time.Since(start).Seconds())
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
