package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/payload"
)

func openT(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// copyDB copies a database and its WAL as they are on disk now: what a crash
// at this moment would leave.
func copyDB(t *testing.T, from, to string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal"} {
		src, err := os.Open(from + suffix)
		if os.IsNotExist(err) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(to + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// traffic makes random batches: several devices, fields of every shape the
// payload package derives (and some it derives nothing from), times that move
// on by up to 4 s a batch and sometimes step back by 90 s (a clock set back).
type traffic struct {
	rng *rand.Rand
	at  int64
	n   int
}

func (g *traffic) batch() *inlet.Batch {
	payloads := []func(k int) string{
		func(k int) string { return fmt.Sprint(k) },
		func(k int) string { return fmt.Sprintf("t=%.2f,h=%d", 20+g.rng.Float64()*5, g.rng.IntN(100)) },
		func(k int) string { return fmt.Sprintf(`{"t":%g,"room":"lab","x":-3e5}`, g.rng.NormFloat64()) },
		func(k int) string { return "hello there" },
		func(k int) string { return fmt.Sprintf(`{"":5,"a\"b":%d,"n":{"x":1},"ok":true}`, k) },
		func(k int) string { return fmt.Sprintf("v=%d room=lab", k%7) },
	}
	b := &inlet.Batch{}
	remote := netip.MustParseAddrPort("127.0.0.1:40000")
	if g.rng.IntN(80) == 0 {
		g.at -= 90e9
	}
	for range 1 + g.rng.IntN(40) {
		g.at += g.rng.Int64N(2e8)
		g.n++
		dev := g.rng.IntN(5)
		p := []byte(payloads[(dev+g.rng.IntN(2))%len(payloads)](g.n))
		f, c, isC := payload.AppendFields(nil, p)
		if len(f) == 0 {
			f = nil
		}
		b.Messages = append(b.Messages, inlet.Message{ReceivedAt: g.at, Device: fmt.Sprintf("dev-%d", dev), Transport: inlet.TCP,
			Remote: remote, Payload: p, Fields: f, Counter: c, IsCounter: isC})
	}
	return b
}

func checkRollups(t *testing.T, s *Store, what string) int {
	t.Helper()
	n, err := s.CheckRollups(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return n
}

// Rollups equal a recomputation from the messages after random traffic with
// clean restarts, crashes (the files as a crash leaves them) and commits that
// were staged but rolled back.
func TestRollupsMatchRecomputation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "a.db")
	s := openT(t, path)
	defer func() { s.Close() }()
	start := time.Date(2026, 11, 29, 10, 52, 30, 0, time.UTC).UnixNano()
	g := &traffic{rng: rand.New(rand.NewPCG(1, 2)), at: start}
	restarts, crashes, aborts := 0, 0, 0
	for i := range 900 {
		b := g.batch()
		switch r := g.rng.IntN(100); {
		case r < 2: // restart cleanly
			s.Close()
			s = openT(t, path)
			restarts++
		case r < 4: // crash: carry on from a copy of the files as they are
			crashes++
			next := filepath.Join(dir, fmt.Sprintf("crash-%d.db", crashes))
			copyDB(t, path, next)
			s.Close()
			path = next
			s = openT(t, path)
		case r < 6: // a commit staged and rolled back, as a failed COMMIT is
			aborts++
			abortCommit(t, s, g.batch())
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if i%100 == 99 {
			checkRollups(t, s, fmt.Sprintf("after batch %d", i))
		}
	}
	// Close every bucket: one message two hours later.
	g.at += 2 * 3600e9
	last := &inlet.Batch{Messages: []inlet.Message{{ReceivedAt: g.at, Device: "dev-0", Transport: inlet.UDP, Payload: []byte("1"), Fields: []byte(`{"value":1}`)}}}
	if err := s.Commit(ctx, last); err != nil {
		t.Fatal(err)
	}
	n := checkRollups(t, s, "at the end")
	var minutes, hours int
	s.db.QueryRow("SELECT count(*) FILTER (WHERE step = 60), count(*) FILTER (WHERE step = 3600) FROM rollups").Scan(&minutes, &hours)
	if hours < 5 || minutes < 100 || n < minutes {
		t.Fatalf("compared %d rows; rollups hold %d minute and %d hour rows: the traffic did not cover enough", n, minutes, hours)
	}
	if restarts == 0 || crashes == 0 || aborts == 0 {
		t.Fatalf("restarts %d, crashes %d, aborts %d: want each", restarts, crashes, aborts)
	}
	t.Logf("%d messages, %d rollup rows equal to the recomputation; %d restarts, %d crashes, %d aborted commits",
		g.n, n, restarts, crashes, aborts)
}

// abortCommit runs a commit of b up to its COMMIT, rollups staged, and rolls
// it back.
func abortCommit(t *testing.T, s *Store, b *inlet.Batch) {
	t.Helper()
	ctx := context.Background()
	err := s.w.Raw(func(any) error {
		ws := s.ws
		if _, err := ws.conn.ExecContext(ctx, "BEGIN IMMEDIATE", nil); err != nil {
			return err
		}
		for i := range b.Messages {
			if err := ws.insert(ctx, ws.plain[len(insertTiers)-1], b.Messages[i:i+1], s.nextID+int64(i), false); err != nil {
				return err
			}
		}
		if err := ws.ru.stage(ctx, ws.conn, b); err != nil {
			return err
		}
		_, err := ws.conn.ExecContext(ctx, "ROLLBACK", nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A database of schema version 1 gets rollups for its rows at migration.
func TestMigrateBuildsRollups(t *testing.T) {
	ctx := context.Background()
	path := copyFixture(t, "v1.db")
	// The fixture's rows were received within 5 s; spread them over four and
	// a half hours (in id order, as inlet writes them) so that most are before
	// the newest minute, which the migration leaves to the writer, and several
	// hours are whole.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE messages SET received_at = received_at - (89 - id) * 180000000000"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openT(t, path)
	defer s.Close()
	var minutes, hours, frontier int64
	if err := s.db.QueryRow("SELECT count(*) FILTER (WHERE step = 60), count(*) FILTER (WHERE step = 3600) FROM rollups").Scan(&minutes, &hours); err != nil {
		t.Fatal(err)
	}
	if frontier, _ = s.RollupFrontier(ctx); frontier == 0 || minutes == 0 || hours == 0 {
		t.Fatalf("after migration: frontier %d, %d minute rows, %d hour rows", frontier, minutes, hours)
	}
	checkRollups(t, s, "after migration")
	// The newest minute is in no rollup yet: the first commit after it closes it.
	at := (frontier + 2*3600) * 1e9
	if err := s.Commit(ctx, &inlet.Batch{Messages: []inlet.Message{{ReceivedAt: at, Device: "x", Transport: inlet.UDP, Payload: []byte("1"), Fields: []byte(`{"value":1}`)}}}); err != nil {
		t.Fatal(err)
	}
	var all, rowsAll int64
	s.db.QueryRow("SELECT count(*) FROM messages WHERE received_at < ?", at).Scan(&all)
	s.db.QueryRow("SELECT sum(n) FROM rollups WHERE step = 60 AND field = ''").Scan(&rowsAll)
	if all != 89 || rowsAll != all {
		t.Fatalf("minute rollups count %d rows, want the fixture's %d (89)", rowsAll, all)
	}
	checkRollups(t, s, "after the first commit")
}

// Pruning messages keeps their rollups and never deletes rows newer than the
// frontier; PruneRollups deletes old rollups only.
func TestPruneKeepsRollups(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "p.db"))
	defer s.Close()
	base := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range 180 { // three hours, a message a minute
		m := inlet.Message{ReceivedAt: base + int64(i)*60e9, Device: "d", Transport: inlet.UDP, Payload: []byte("x"), Fields: fmt.Appendf(nil, `{"value":%d}`, i)}
		if err := s.Commit(ctx, &inlet.Batch{Messages: []inlet.Message{m}}); err != nil {
			t.Fatal(err)
		}
	}
	hourRows := func() (n int64) {
		s.db.QueryRow("SELECT coalesce(sum(n), 0) FROM rollups WHERE step = 3600 AND field = 'value'").Scan(&n)
		return n
	}
	if h := hourRows(); h != 120 {
		t.Fatalf("hour rollups count %d values, want 120 (two closed hours)", h)
	}
	// Prune every message, the newest minute's too (in memory, not in rollups
	// yet: it is written when the minute closes).
	n, err := s.Prune(ctx, base+1000*60e9, PruneOptions{})
	if err != nil || n != 180 {
		t.Fatalf("prune: %d, %v; want 180", n, err)
	}
	var minutes int64
	s.db.QueryRow("SELECT coalesce(sum(n), 0) FROM rollups WHERE step = 60 AND field = 'value'").Scan(&minutes)
	if h := hourRows(); h != 120 || minutes != 170 {
		t.Fatalf("after pruning messages: rollups count %d (hours) and %d (minutes), want 120 and 170 (the frontier moves ten minutes at a time)", h, minutes)
	}
	// Rollups of buckets ending by base+90 min: 90 minutes and the first hour.
	d, err := s.PruneRollups(ctx, base+90*60e9)
	if err != nil {
		t.Fatal(err)
	}
	var first60, first3600 int64
	s.db.QueryRow("SELECT min(bucket) FROM rollups WHERE step = 60").Scan(&first60)
	s.db.QueryRow("SELECT min(bucket) FROM rollups WHERE step = 3600").Scan(&first3600)
	if d != 90*2+2 || first60 != base/1e9+90*60 || first3600 != base/1e9+3600 {
		t.Fatalf("prune rollups: deleted %d (want 182), first minute %d, first hour %d", d, first60-base/1e9, first3600-base/1e9)
	}
}

func TestEachNumber(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{`{"value":41}`, "value=41 "},
		{`{"t":21.5,"room":"lab","h":-4e-7}`, "t=21.5 h=-4e-07 "},
		{`{"a\"b":2,"":3,"x":1}`, `a"b=2 x=1 `},
		{`{"n":{"x":1},"ok":true,"v":2}`, "v=2 "},
		{`{"s":"a,b}","v":1e999,"w":3}`, "w=3 "},
		{`{"v":0x10}`, ""},
		{`{"v":1,}`, ""},
		{`{}`, ""},
		{``, ""},
	} {
		got := ""
		eachNumber([]byte(c.in), func(k []byte, v float64) { got += fmt.Sprintf("%s=%g ", k, v) })
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.in, got, c.want)
		}
	}
}
