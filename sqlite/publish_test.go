package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/inletdev/inlet/sqlite"
)

func TestPublishPosition(t *testing.T) {
	s, path := MustOpen(t)
	ctx := context.Background()
	if id, err := s.PublishPosition(ctx, "nats"); err != nil || id != 0 {
		t.Fatalf("fresh position = %d, %v; want 0", id, err)
	}
	for _, c := range []struct {
		name string
		set  int64
		want int64
	}{
		{"nats", 5, 5},
		{"nats", 9, 9},
		{"nats", 3, 9}, // never moves back
		{"node-b", 2, 2},
	} {
		if err := s.SetPublishPosition(ctx, c.name, c.set); err != nil {
			t.Fatal(err)
		}
		if id, err := s.PublishPosition(ctx, c.name); err != nil || id != c.want {
			t.Fatalf("after set %s=%d: position %d, %v; want %d", c.name, c.set, id, err, c.want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Kept across a restart; each name has its own.
	s2, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for name, want := range map[string]int64{"nats": 9, "node-b": 2, "other": 0} {
		if id, err := s2.PublishPosition(ctx, name); err != nil || id != want {
			t.Errorf("reopened: %s = %d, %v; want %d", name, id, err, want)
		}
	}
	// A reader (inlet export's store) may read it but not write it.
	r, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if id, err := r.PublishPosition(ctx, "nats"); err != nil || id != 9 {
		t.Errorf("read-only: %d, %v; want 9", id, err)
	}
	if err := r.SetPublishPosition(ctx, "nats", 20); err == nil {
		t.Error("a read-only store saved a position")
	}
}

// A database of the first release goes up the ladder and gains the table.
func TestPublishPositionAfterMigration(t *testing.T) {
	ctx := context.Background()
	path := copyV1(t)
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if id, err := s.PublishPosition(ctx, "nats"); err != nil || id != 0 {
		t.Fatalf("migrated: %d, %v", id, err)
	}
	if err := s.SetPublishPosition(ctx, "nats", 7); err != nil {
		t.Fatal(err)
	}
	if id, err := s.PublishPosition(ctx, "nats"); err != nil || id != 7 {
		t.Fatalf("migrated: %d, %v; want 7", id, err)
	}
}

func copyV1(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "v1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v1.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
