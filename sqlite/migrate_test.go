package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

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
	checkLayoutAfterV1(t, s, path)
}

// checkLayoutAfterV1 goes on from TestMigrateFromV1 (the layout of migration
// 0003, docs/schema.md "How rows are stored"): the version-1 rows are in
// messages_merged, behind the view messages with the rows committed since; a
// merge and a restart change nothing a reader sees; resends of seqs in either
// half are not stored again; the documented sqlite3 queries read both halves.
func checkLayoutAfterV1(t *testing.T, s *Store, path string) {
	ctx := context.Background()
	cur := s
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := cur.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	if m, r := count("SELECT count(*) FROM messages_merged"), count("SELECT count(*) FROM messages_recent"); m != 89 || r != 1 {
		t.Fatalf("after the migration and one commit: %d merged rows, %d recent; want the fixture's 89 and the fill of 3", m, r)
	}
	remote := netip.MustParseAddrPort("127.0.0.1:1")
	lab := func(seq int64, at int64) inlet.Message {
		return inlet.Message{Device: "lab-1", Boot: "b2", Seq: seq, Transport: inlet.TCP, Remote: remote, Payload: []byte(fmt.Sprint(seq)), ReceivedAt: at}
	}
	plain := func(v int, at int64) inlet.Message {
		return inlet.Message{Device: "127.0.0.10", Transport: inlet.UDP, Remote: remote, Payload: []byte(fmt.Sprint(v)), ReceivedAt: at,
			Counter: int64(v), IsCounter: true}
	}
	// Acknowledged and plain rows in the recent half, with their state.
	now := time.Now().UnixNano()
	b := &inlet.Batch{Messages: []inlet.Message{lab(1, now), lab(2, now), plain(21, now), plain(22, now)},
		Devices: []inlet.Device{{ID: "lab-1", Messages: 2, FirstSeen: now, LastSeen: now, LastBoot: "b2", Resets: 1}},
		Boots:   []inlet.Boot{{Device: "lab-1", Boot: "b2", Last: 2, Messages: 2, FirstSeen: now, LastSeen: now}}}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n := count("SELECT count(*) FROM messages"); n != 94 {
		t.Fatalf("messages (the view): %d rows, want 94", n)
	}
	if n := count("SELECT count(*) FROM messages WHERE device = 'lab-1' AND boot = 'b2'"); n != 2 {
		t.Fatalf("lab-1/b2 before the merge: %d rows, want 2", n)
	}
	// A resend of a recent seq is refused by the store itself.
	if err := s.Commit(ctx, &inlet.Batch{Messages: []inlet.Message{lab(2, now)}}); err != nil {
		t.Fatal(err)
	}
	// What every reader sees, before and after a merge and a restart.
	type snapshot struct {
		rows  []string
		devs  []inlet.Device
		boots []inlet.Boot
		last  int64
	}
	read := func(st *Store) snapshot {
		t.Helper()
		var sn snapshot
		err := st.Messages(ctx, inlet.Query{}, func(m *inlet.Stored) error {
			sn.rows = append(sn.rows, fmt.Sprintf("%d %s %s %d %q", m.ID, m.Device, m.Boot, m.Seq, m.Payload))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if sn.devs, err = st.Devices(ctx); err != nil {
			t.Fatal(err)
		}
		if sn.boots, err = st.Boots(ctx); err != nil {
			t.Fatal(err)
		}
		if sn.last, err = st.LastID(ctx); err != nil {
			t.Fatal(err)
		}
		return sn
	}
	before := read(s)
	if len(before.rows) != 94 {
		t.Fatalf("Messages: %d rows, want 94 (the resend of lab-1/b2/2 stored again?)", len(before.rows))
	}
	if err := s.Merge(ctx); err != nil {
		t.Fatal(err)
	}
	if m, r, l := count("SELECT count(*) FROM messages_merged"), count("SELECT count(*) FROM messages_recent"), count("SELECT count(*) FROM state_log"); m != 94 || r != 0 || l != 0 {
		t.Fatalf("after the merge: %d merged, %d recent, %d state rows; want 94, 0, 0", m, r, l)
	}
	if after := read(s); !reflect.DeepEqual(after, before) {
		t.Fatalf("a merge changed what readers see:\nbefore %+v\nafter  %+v", before, after)
	}
	// A resend of a merged seq: the unique index's half.
	if err := s.Commit(ctx, &inlet.Batch{Messages: []inlet.Message{lab(1, now), lab(3, now)}}); err != nil {
		t.Fatal(err)
	}
	if n := count("SELECT count(*) FROM messages WHERE device = 'lab-1' AND boot = 'b2'"); n != 3 {
		t.Fatalf("lab-1/b2 after resending merged seq 1 with 3: %d rows, want 3", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	cur = s2
	// After the restart: ids go on from the highest, resends of both halves are refused.
	if err := s2.Commit(ctx, &inlet.Batch{Messages: []inlet.Message{lab(1, now), lab(3, now), lab(4, now)}}); err != nil {
		t.Fatal(err)
	}
	after := read(s2)
	if len(after.rows) != 96 || after.last != before.last+2 {
		t.Fatalf("after a restart: %d rows, last id %d; want 96 and %d", len(after.rows), after.last, before.last+2)
	}
	// The documented queries (docs/schema.md) read both halves.
	var payload string
	if err := s2.db.QueryRowContext(ctx, `SELECT CAST(payload AS TEXT) FROM messages WHERE device = 'lab-1' ORDER BY id DESC LIMIT 1`).Scan(&payload); err != nil || payload != "4" {
		t.Fatalf("the newest lab-1 reading: %q, %v; want the recent 4", payload, err)
	}
	if n := count(`SELECT count(*) FROM (SELECT received_at/60000000000*60 AS minute, count(*) FROM messages
		WHERE device = '127.0.0.10' GROUP BY minute)`); n < 2 {
		t.Fatalf("messages per minute of 127.0.0.10: %d minutes, want the fixture's and today's", n)
	}
	var lossy, wantLossy []string
	for _, d := range after.devs {
		if l, known := d.Reported(); known && (l.Missing > 0 || l.Resets > 0) {
			wantLossy = append(wantLossy, d.ID)
		}
	}
	rs, err := s2.db.QueryContext(ctx, `SELECT device FROM devices WHERE kind != 'values' AND (missing > 0 OR resets > 0) ORDER BY device`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var d string
		rs.Scan(&d)
		lossy = append(lossy, d)
	}
	rs.Close()
	if !slices.Equal(lossy, wantLossy) || !slices.Contains(lossy, "lab-1") {
		t.Fatalf("devices with loss: %v, want %v (lab-1's reset among them)", lossy, wantLossy)
	}
	wantRanges := 0
	for _, b := range after.boots {
		wantRanges += len(b.Missing)
	}
	if n := count(`SELECT count(*) FROM boots, json_each(boots.missing) AS r`); n != wantRanges || n == 0 {
		t.Fatalf("missing ranges by the documented query: %d, want %d", n, wantRanges)
	}
	if n := count(`SELECT count(*) FROM boots WHERE device = 'lab-1' AND boot = 'b2' AND last_seq = 2`); n != 1 {
		t.Fatalf("lab-1/b2 in the boots view: %d rows with last_seq 2, want 1", n)
	}
	var check string
	if err := s2.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
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
