package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// Backup writes a consistent copy of the database at src to dst while a server
// may go on writing to src. The copy is SQLite's VACUUM INTO: one read
// transaction, so it holds exactly the transactions committed before it began,
// and it is compacted (no free pages, no WAL). It is written to a temporary file
// beside dst, synced, and renamed into place, so dst is either the whole copy or
// absent. progress, when not nil, is called about every 200 ms with the bytes
// written so far and the size of the source (an upper bound of the copy's size).
// dst must not exist.
func Backup(ctx context.Context, src, dst string, progress func(done, total int64)) (err error) {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("sqlite: backup: no database at %s: %w", src, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("sqlite: backup: %s exists; name a new file (a backup never overwrites)", dst)
	}
	db, err := sql.Open("sqlite", "file:"+src+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("sqlite: backup: open %s: %w", src, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: backup: open %s: %w", src, err)
	}
	defer conn.Close()
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("sqlite: backup: %s: %w", src, err)
	}
	if err := checkVersion(version); err != nil {
		return fmt.Errorf("sqlite: backup: %s: %w", src, err)
	}
	var pages, pageSize int64
	if err := conn.QueryRowContext(ctx, "SELECT page_count * 1, (SELECT page_size FROM pragma_page_size) FROM pragma_page_count").Scan(&pages, &pageSize); err != nil {
		return fmt.Errorf("sqlite: backup: %s: %w", src, err)
	}
	total := pages * pageSize

	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".partial")
	os.Remove(tmp) // a leftover of an interrupted backup
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if progress == nil {
			return
		}
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if fi, err := os.Stat(tmp); err == nil {
					progress(fi.Size(), total)
				}
			}
		}
	}()
	_, err = conn.ExecContext(ctx, "VACUUM INTO ?", tmp)
	close(stop)
	<-watched
	if err != nil {
		return fmt.Errorf("sqlite: backup to %s: %w", dst, err)
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("sqlite: backup to %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("sqlite: backup to %s: %w", dst, err)
	}
	if err := syncFile(filepath.Dir(dst)); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("sqlite: backup to %s: sync its directory: %w", dst, err)
	}
	if progress != nil {
		if fi, err := os.Stat(dst); err == nil {
			progress(fi.Size(), total)
		}
	}
	return nil
}

// syncFile fsyncs a file or directory by name.
func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
