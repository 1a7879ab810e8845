package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet/sqlite"
)

func countRows(t *testing.T, path, where string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow("SELECT count(*) FROM messages " + where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A backup taken while batches keep committing opens, passes integrity_check,
// and holds every row committed before it started.
func TestBackupUnderLoad(t *testing.T) {
	ctx := context.Background()
	s, path := MustOpen(t)
	if err := s.Commit(ctx, batch(0, 5000, 50, 1)); err != nil {
		t.Fatal(err)
	}
	var committed atomic.Int64 // rows committed so far
	committed.Store(5000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 5000; ; k += 500 {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Commit(ctx, batch(k, 500, 50, 2)); err != nil {
				t.Error(err)
				return
			}
			committed.Store(int64(k + 500))
		}
	}()
	for committed.Load() < 20000 && !t.Failed() {
		time.Sleep(time.Millisecond)
	}
	before := committed.Load()
	dst := filepath.Join(t.TempDir(), "backup.db")
	var calls int
	var last, total int64
	err := sqlite.Backup(ctx, path, dst, func(d, tot int64) { calls++; last, total = d, tot })
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || last <= 0 || total < last {
		t.Fatalf("progress: %d calls, last %d of %d", calls, last, total)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 1 {
		t.Fatalf("the backup left files beside it: %v", entries)
	}
	if n := countRows(t, dst, ""); n < before || n > committed.Load() {
		t.Fatalf("backup holds %d rows; %d were committed before it started, %d by its end", n, before, committed.Load())
	}
	db, err := sql.Open("sqlite", "file:"+dst+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of the backup: %q %v", check, err)
	}
	// The backup is a complete inlet database: it opens as a store, with its devices.
	b, err := sqlite.Open(ctx, dst, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
}

func TestBackupNeverOverwrites(t *testing.T) {
	ctx := context.Background()
	_, path := MustOpen(t)
	dst := filepath.Join(t.TempDir(), "taken.db")
	if err := os.WriteFile(dst, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := sqlite.Backup(ctx, path, dst, nil)
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("backup onto an existing file: %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "precious" {
		t.Fatalf("the existing file was changed: %q", b)
	}
	if err := sqlite.Backup(ctx, filepath.Join(t.TempDir(), "none.db"), filepath.Join(t.TempDir(), "x.db"), nil); err == nil {
		t.Fatal("backup of a missing database succeeded")
	}
}
