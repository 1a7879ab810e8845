package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/inletdev/inlet"
)

// copyFixture copies a database kept under testdata into a temp dir.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	src, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), name)
	dst, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func userVersion(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// testdata/v1.db was written by inlet at schema version 1 (the first release):
// three tutorial devices, UDP, fields, a device with duplicates and a gap, an acknowledged
// TCP and UDP device, and an acknowledged device with seqs 3-4 missing.
func TestMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	path := copyFixture(t, "v1.db")
	if v := userVersion(t, path); v != 1 {
		t.Fatalf("fixture at version %d, want 1", v)
	}
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := userVersion(t, path); v != SchemaVersion() {
		t.Fatalf("after Open: version %d, want %d", v, SchemaVersion())
	}
	var check string
	if err := s.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
	var rows int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM messages").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 89 {
		t.Fatalf("messages: %d rows, want the fixture's 89", rows)
	}
	devs, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]inlet.Device{}
	for _, d := range devs {
		byID[d.ID] = d
	}
	if d := byID["127.0.0.10"]; d.Messages != 20 || d.Missing != 0 || d.Run.High != 20 {
		t.Fatalf("127.0.0.10 after migration: %+v", d)
	}
	if d := byID["127.0.0.1"]; d.Messages != 11 || d.Duplicates != 3 || d.Missing != 1 {
		t.Fatalf("127.0.0.1 after migration: %+v", d)
	}
	// Version 2: whether a device is a counter is learnt again; a plain device
	// starts as values with its old figures pending, an acknowledged one is acked.
	type kindRow struct {
		kind                              string
		counting                          sql.NullString
		gaps, missing, duplicates, resets int64
	}
	wantKinds := map[string]kindRow{
		"127.0.0.1":  {"values", sql.NullString{String: "0 1 1 3 0 0 0 0 0 0 0 0 0 1 1 3 0", Valid: true}, 0, 0, 0, 0},
		"127.0.0.10": {"values", sql.NullString{String: "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0", Valid: true}, 0, 0, 0, 0},
		"gap-3":      {"acked", sql.NullString{}, 1, 2, 0, 0},
		"lab-1":      {"acked", sql.NullString{}, 0, 0, 0, 0},
	}
	for dev, want := range wantKinds {
		var got kindRow
		if err := s.db.QueryRowContext(ctx, "SELECT kind, counting, gaps, missing, duplicates, resets FROM devices WHERE device = ?", dev).
			Scan(&got.kind, &got.counting, &got.gaps, &got.missing, &got.duplicates, &got.resets); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s after migration: %+v, want %+v", dev, got, want)
		}
	}
	if d := byID["127.0.0.1"]; d.KindName() != "values" || d.Pending != (inlet.Loss{Gaps: 1, Missing: 1, Duplicates: 3}) {
		t.Fatalf("127.0.0.1 read back after migration: kind %s, pending %+v", d.KindName(), d.Pending)
	}
	g := byID["gap-3"]
	if l, known := g.Reported(); g.KindName() != "acked" || !known || l.Missing != 2 {
		t.Fatalf("gap-3 after migration: kind %s, reported %+v %v", g.KindName(), l, known)
	}
	// A migrated tutorial counter that goes on counting is recognised, and its
	// old figures come back with it.
	d := byID["127.0.0.1"]
	for v := int64(9); v < 9+inlet.CounterMin; v++ {
		d.Observe(&inlet.Message{ReceivedAt: 1, Device: d.ID, Counter: v, IsCounter: true})
	}
	if l, known := d.Reported(); d.KindName() != "counter" || !known || l != (inlet.Loss{Gaps: 1, Missing: 1, Duplicates: 3}) {
		t.Fatalf("127.0.0.1 counting on after migration: kind %s, reported %+v", d.KindName(), l)
	}
	if err := s.Commit(ctx, &inlet.Batch{Devices: []inlet.Device{d}}); err != nil {
		t.Fatal(err)
	}
	if devs, err = s.Devices(ctx); err != nil {
		t.Fatal(err)
	}
	for _, back := range devs {
		if back.ID == d.ID && back != d {
			t.Fatalf("device state does not survive the store:\nwrote %+v\n read %+v", d, back)
		}
	}
	var reported int64
	if err := s.db.QueryRowContext(ctx, "SELECT duplicates FROM devices WHERE device = ? AND kind = 'counter'", d.ID).Scan(&reported); err != nil || reported != 3 {
		t.Fatalf("stored duplicates of the counter: %d, %v; want 3", reported, err)
	}
	b, ok, err := s.Boot(ctx, "gap-3", "b1")
	if err != nil || !ok {
		t.Fatalf("boot gap-3/b1: ok=%v err=%v", ok, err)
	}
	if b.Last != 5 || b.Durable() != 2 || len(b.Missing) != 1 || b.Missing[0] != (inlet.SeqRange{From: 3, To: 4}) {
		t.Fatalf("boot gap-3/b1 after migration: %+v", b)
	}
	// And it still takes writes: a resend of a stored seq is not stored twice.
	remote := netip.MustParseAddrPort("127.0.0.1:1")
	if err := s.Commit(ctx, &inlet.Batch{Messages: []inlet.Message{
		{Device: "gap-3", Boot: "b1", Seq: 5, Transport: inlet.TCP, Remote: remote, Payload: []byte("t=5"), ReceivedAt: 1},
		{Device: "gap-3", Boot: "b1", Seq: 3, Transport: inlet.TCP, Remote: remote, Payload: []byte("t=3"), ReceivedAt: 2},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM messages WHERE device = 'gap-3'").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 4 {
		t.Fatalf("gap-3 after a resend of 5 and the fill of 3: %d rows, want 4", rows)
	}
}

func TestNewerDatabaseRefused(t *testing.T) {
	ctx := context.Background()
	path := copyFixture(t, "v1.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 9999"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, ro := range []bool{false, true} {
		_, err := Open(ctx, path, Options{ReadOnly: ro})
		if !errors.Is(err, errNewer) || !strings.Contains(err.Error(), "upgrade inlet") {
			t.Fatalf("read-only=%v: Open of a version-9999 database: %v, want a clear 'newer' refusal", ro, err)
		}
	}
	if v := userVersion(t, path); v != 9999 {
		t.Fatalf("the refused database was changed: version %d", v)
	}
}

func TestReaderNeedsCurrentVersion(t *testing.T) {
	path := copyFixture(t, "v1.db")
	_, err := Open(context.Background(), path, Options{ReadOnly: true})
	if SchemaVersion() == 1 {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), "inlet serve") {
		t.Fatalf("a reader of an old database: %v, want advice to start inlet serve once", err)
	}
}

// A step that fails leaves the database at the step before it, with nothing of
// the failed step applied; the next start continues from there.
func TestLadderStepsAreAtomic(t *testing.T) {
	ctx := context.Background()
	fsys := fstest.MapFS{
		"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x);")},
		"migrations/0002_b.sql": {Data: []byte("CREATE TABLE b (x); INSERT INTO a VALUES (1);")},
		"migrations/0003_c.sql": {Data: []byte("CREATE TABLE c (x); INSERT INTO nosuch VALUES (1);")},
	}
	l, err := loadLadder(fsys)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = migrate(ctx, conn, l)
	if err == nil || !strings.Contains(err.Error(), "version 3 (c)") {
		t.Fatalf("migrate: %v, want the failure of step 3 named", err)
	}
	var v, c int
	conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name = 'c'").Scan(&c)
	if v != 2 || c != 0 {
		t.Fatalf("after a failed step 3: version %d, table c %d; want 2 and none", v, c)
	}
	fsys["migrations/0003_c.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE c (x);")}
	if l, err = loadLadder(fsys); err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, conn, l); err != nil {
		t.Fatal(err)
	}
	var n int
	conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	conn.QueryRowContext(ctx, "SELECT count(*) FROM a").Scan(&n)
	if v != 3 || n != 1 {
		t.Fatalf("after the fixed ladder: version %d, rows in a %d; want 3 and 1 (step 2 ran once)", v, n)
	}
}

func TestLadderNumbering(t *testing.T) {
	for _, names := range [][]string{
		{"migrations/0001_a.sql", "migrations/0003_c.sql"},
		{"migrations/0002_b.sql"},
		{"migrations/1.sql"},
		{},
	} {
		fsys := fstest.MapFS{}
		for _, n := range names {
			fsys[n] = &fstest.MapFile{Data: []byte("SELECT 1;")}
		}
		if _, err := loadLadder(fsys); err == nil {
			t.Errorf("ladder %v accepted", names)
		}
	}
	if _, err := loadLadder(migrationFiles); err != nil {
		t.Fatalf("the embedded ladder: %v", err)
	}
}
