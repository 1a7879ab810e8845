package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

func count(t testing.TB, path string) int {
	t.Helper()
	r, err := sqlite.Open(context.Background(), path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	if err := r.Messages(context.Background(), inlet.Query{}, func(*inlet.Stored) error { n++; return nil }); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return n
}

// A second writer on one file is refused with the holder's pid; readers are not.
func TestSecondWriterRefused(t *testing.T) {
	ctx := context.Background()
	s, path := MustOpen(t)
	if err := s.Commit(ctx, batch(0, 3, 1, time.Now().UnixNano())); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(ctx, path, sqlite.Options{})
	if !errors.Is(err, sqlite.ErrInUse) {
		t.Fatalf("second writer: %v, want ErrInUse", err)
	}
	if !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), "--db") {
		t.Errorf("second writer's error does not name the holder and what to do: %v", err)
	}
	if n := count(t, path); n != 3 {
		t.Errorf("a reader beside the writer sees %d rows, want 3", n)
	}
	// Once the first closes, the next writer takes over.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("writer after the first closed: %v", err)
	}
	s2.Close()
}

// Deleting the database under a writer makes every commit fail: nothing is
// reported stored into a file no path names. Putting the file back resumes.
func TestDeletedDatabaseRefusesCommits(t *testing.T) {
	ctx := context.Background()
	s, path := MustOpen(t)
	if err := s.Commit(ctx, batch(0, 5, 1, time.Now().UnixNano())); err != nil {
		t.Fatal(err)
	}
	if !s.Ready() {
		t.Fatal("not ready before the deletion")
	}
	aside := t.TempDir()
	for _, sfx := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+sfx, filepath.Join(aside, "inlet.db"+sfx)); err != nil {
			t.Fatal(err)
		}
	}
	err := s.Commit(ctx, batch(5, 5, 1, time.Now().UnixNano()))
	if !errors.Is(err, sqlite.ErrFileLost) {
		t.Fatalf("commit after the file went: %v, want ErrFileLost", err)
	}
	if s.Ready() {
		t.Error("ready after the file went")
	}
	if n := count(t, filepath.Join(aside, "inlet.db")); n != 5 {
		t.Errorf("the file holds %d rows, want the 5 committed before it went", n)
	}
	for _, sfx := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(filepath.Join(aside, "inlet.db"+sfx), path+sfx); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(ctx, batch(5, 5, 1, time.Now().UnixNano())); err != nil {
		t.Fatalf("commit after the file came back: %v", err)
	}
	if !s.Ready() {
		t.Error("not ready after the file came back")
	}
	if n := count(t, path); n != 10 {
		t.Errorf("%d rows after the file came back, want 10", n)
	}
	// Really deleted: refused for good.
	for _, sfx := range []string{"", "-wal", "-shm"} {
		os.Remove(path + sfx)
	}
	if err := s.Commit(ctx, batch(10, 1, 1, time.Now().UnixNano())); !errors.Is(err, sqlite.ErrFileLost) {
		t.Fatalf("commit after rm: %v, want ErrFileLost", err)
	}
}

// A file moved over the database (mv other.db inlet.db) is not written, and the
// writer's own -wal and -shm leave its path, so the new file reads as itself,
// also after the writer closes.
func TestReplacedDatabase(t *testing.T) {
	ctx := context.Background()
	s, path := MustOpen(t)
	if err := s.Commit(ctx, batch(0, 5, 1, time.Now().UnixNano())); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.db")
	o, err := sqlite.Open(ctx, other, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Commit(ctx, batch(100, 7, 2, time.Now().UnixNano())); err != nil {
		t.Fatal(err)
	}
	o.Close()
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	err = s.Commit(ctx, batch(5, 5, 1, time.Now().UnixNano()))
	if !errors.Is(err, sqlite.ErrFileLost) || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("commit after the file was replaced: %v, want ErrFileLost naming a replacement", err)
	}
	if s.Ready() {
		t.Error("ready after the file was replaced")
	}
	if n := count(t, path); n != 7 {
		t.Errorf("the replacement reads %d rows, want its own 7", n)
	}
	// The replacement gets a WAL of its own, holding a row, while the old
	// writer closes: SQLite's close of the old one must not delete it by name.
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	if _, err := raw.Exec("PRAGMA wal_autocheckpoint = 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO messages_recent (received_at, device, transport, remote, payload) VALUES (1, 'x', 'tcp', '127.0.0.1:1', 'late')`); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("the replacement has no WAL of its own: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, path); n != 8 {
		t.Errorf("after the old writer closed, the replacement reads %d rows, want its own 8", n)
	}
}

// A commit waiting on a write lock another connection holds turns the store
// unready within about StuckAfter, long before the busy timeout fails it.
func TestHeldLockTurnsUnready(t *testing.T) {
	ctx := context.Background()
	s, path := MustOpen(t)
	if err := s.Commit(ctx, batch(0, 1, 1, time.Now().UnixNano())); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Commit(ctx, batch(1, 1, 1, time.Now().UnixNano())) }()
	start := time.Now()
	for s.Ready() {
		if time.Since(start) > 5*time.Second {
			t.Fatal("still ready 5s into a commit blocked by another connection's write lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Unready(); err == nil || !strings.Contains(err.Error(), "write lock") {
		t.Errorf("unready reason %v, want one naming the write lock", err)
	}
	select {
	case err := <-done:
		t.Fatalf("commit returned (%v) while the lock was held", err)
	default:
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("commit after the lock was released: %v", err)
	}
	if !s.Ready() {
		t.Error("not ready after the commit went through")
	}
}

// Where SQLite would only say "unable to open database file (14)", Open says why.
func TestOpenSaysWhy(t *testing.T) {
	dir := t.TempDir()
	_, err := sqlite.Open(context.Background(), filepath.Join(dir, "missing", "x.db"), sqlite.Options{})
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "mkdir -p") {
		t.Errorf("missing directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); err == nil {
		t.Error("Open created the missing directory")
	}
	_, err = sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a directory as the database: %v", err)
	}
}

// BenchmarkCommitGuard is the cost of the guard's checks beside the cheapest
// commit that syncs: one row.
func BenchmarkCommitGuard(b *testing.B) {
	ctx := context.Background()
	s, _ := MustOpen(b)
	bt := batch(0, 1, 1, time.Now().UnixNano())
	b.Run("commit-1-row", func(b *testing.B) {
		for b.Loop() {
			if err := s.Commit(ctx, bt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("checks", func(b *testing.B) {
		for b.Loop() {
			if err := sqlite.CheckGuard(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A refused Open leaves nothing it created behind, and nothing it did not
// create is touched.
func TestFailedOpenLeavesNothingBehind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "foreign.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("CREATE TABLE mine (x)"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if _, err := sqlite.Open(context.Background(), path, sqlite.Options{}); err == nil || !strings.Contains(err.Error(), "another database") {
		t.Fatalf("open of a foreign database: %v", err)
	}
	if _, err := os.Stat(sqlite.LockPath(path)); err == nil {
		t.Error("the refused open left its lock file behind")
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the refused open removed a file it did not create: %v", err)
	}
}
