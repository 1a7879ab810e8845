package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	neturl "net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/commit"
	"github.com/inletdev/inlet/internal/pgtest"
	"github.com/inletdev/inlet/postgres"
	"github.com/inletdev/inlet/sqlite"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// open opens a store on url, closed when the test ends.
func open(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// node is one server's writer over a store.
type node struct {
	w *commit.Writer
}

func newNode(t testing.TB, s inlet.Store) *node {
	t.Helper()
	w, err := commit.New(context.Background(), s, commit.Config{Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	return &node{w: w}
}

// acker records that a message was acknowledged.
type acker chan int64

func (a acker) Acked(seq int64) { a <- seq }

// send submits msgs and waits until every one is acknowledged (committed, or
// a duplicate of a committed one).
func (n *node) send(t testing.TB, msgs ...inlet.Message) {
	t.Helper()
	a := make(acker, len(msgs))
	for i := range msgs {
		msgs[i].Ack = a
	}
	if err := n.w.Submit(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	for range msgs {
		select {
		case <-a:
		case <-time.After(30 * time.Second):
			t.Fatal("no acknowledgement within 30 s")
		}
	}
}

var base = time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC).UnixNano()

// plain is a tutorial device's message: a lone integer.
func plain(device string, i int, v int64) inlet.Message {
	p := []byte(fmt.Sprint(v))
	return inlet.Message{ReceivedAt: base + int64(i)*int64(time.Millisecond), Device: device, Transport: inlet.TCP,
		Remote: netip.MustParseAddrPort("192.0.2.7:40000"), Payload: p}
}

// acked is an acknowledged-mode message.
func acked(device, boot string, i int, seq int64) inlet.Message {
	return inlet.Message{ReceivedAt: base + int64(i)*int64(time.Millisecond), Device: device, Transport: inlet.TCP,
		Remote: netip.MustParseAddrPort("192.0.2.8:41000"), Boot: boot, Seq: seq, Payload: []byte(fmt.Sprintf("t=%d", seq))}
}

// traffic is one plain counter device and one acknowledged device, with loss,
// duplicates, late arrivals, resends and reboots; each element is sent alone,
// after the previous one was acknowledged.
func traffic() []inlet.Message {
	var out []inlet.Message
	i := 0
	next := func(m inlet.Message) { out = append(out, m); i++ }
	for v := int64(1); v <= 60; v++ {
		switch {
		case v >= 20 && v <= 22: // lost
		case v == 40:
			next(plain("192.0.2.7", i, v))
			next(plain("192.0.2.7", i, v)) // duplicate
		case v == 50:
			next(plain("192.0.2.7", i, 52)) // 51 and 50 come late
			next(plain("192.0.2.7", i, 51))
			next(plain("192.0.2.7", i, 50))
		case v == 51 || v == 52:
		default:
			next(plain("192.0.2.7", i, v))
		}
		// The acknowledged device interleaves: seq 1..30, 8..9 lost then resent.
		if v <= 30 && v != 8 && v != 9 {
			next(acked("esp-a", "b1", i, v))
		}
		if v == 35 {
			next(acked("esp-a", "b1", i, 8))
			next(acked("esp-a", "b1", i, 9))
			next(acked("esp-a", "b1", i, 9)) // a resend of a stored one
		}
	}
	for v := int64(1); v <= 25; v++ { // the counter's device reboots
		next(plain("192.0.2.7", i, v))
		next(acked("esp-a", "b2", i, v)) // so does the acknowledged one
	}
	return out
}

// state is what the readers report of a store's accounting.
type state struct {
	Devices []inlet.Device
	Boots   []inlet.Boot
	Rows    []string
}

func readState(t testing.TB, r inlet.Reader) state {
	t.Helper()
	ctx := context.Background()
	var st state
	var err error
	if st.Devices, err = r.Devices(ctx); err != nil {
		t.Fatal(err)
	}
	if st.Boots, err = r.Boots(ctx); err != nil {
		t.Fatal(err)
	}
	err = r.Messages(ctx, inlet.Query{}, func(m *inlet.Stored) error {
		st.Rows = append(st.Rows, fmt.Sprintf("%s %s %s %s/%d %q %s", m.Device, m.Transport, m.Remote, m.Boot, m.Seq, m.Payload, m.Fields))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The writer stamps receive times itself: they differ between runs.
	for i := range st.Devices {
		st.Devices[i].FirstSeen, st.Devices[i].LastSeen = 0, 0
	}
	for i := range st.Boots {
		st.Boots[i].FirstSeen, st.Boots[i].LastSeen = 0, 0
	}
	return st
}

// TestSameAsSQLite: the same traffic through the commit writer gives the same
// messages, devices and boots in PostgreSQL as in SQLite, the reference.
func TestSameAsSQLite(t *testing.T) {
	ctx := context.Background()
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "inlet.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() }) // after the writer's Close (cleanups run last first)
	pg := open(t, pgtest.URL(t))
	a, b := newNode(t, lite), newNode(t, pg)
	msgs := traffic()
	// Some messages alone, some in batches of several devices.
	for i := 0; i < len(msgs); {
		n := 1 + i%4
		n = min(n, len(msgs)-i)
		a.send(t, append([]inlet.Message(nil), msgs[i:i+n]...)...)
		b.send(t, append([]inlet.Message(nil), msgs[i:i+n]...)...)
		i += n
	}
	want, got := readState(t, lite), readState(t, pg)
	if len(want.Rows) == 0 || len(want.Devices) != 2 || len(want.Boots) != 2 {
		t.Fatalf("reference: %d rows, %d devices, %d boots", len(want.Rows), len(want.Devices), len(want.Boots))
	}
	compare(t, "postgres", got, want)
	d := got.Devices[0]
	if l, _ := d.Reported(); d.ID != "192.0.2.7" || d.KindName() != "counter" || l.Missing != 3 || l.Gaps != 1 || l.Duplicates != 1 || l.Resets != 1 {
		t.Errorf("counter device: %s %+v", d.KindName(), l)
	}
	if d := got.Devices[1]; d.Duplicates != 1 || d.Resets != 1 || d.Missing != 0 || d.Gaps != 0 {
		t.Errorf("acked device: %+v", d)
	}
	// The other readers.
	for _, r := range []inlet.Reader{lite, pg} {
		last, err := r.LastID(ctx)
		if err != nil || last == 0 {
			t.Fatalf("LastID %d %v", last, err)
		}
		latest, err := r.Latest(ctx)
		if err != nil || len(latest) != 2 || latest[1].ID != last {
			t.Fatalf("Latest: %v %v", latest, err)
		}
		recent, totals, err := r.RecentBoots(ctx, 1)
		if err != nil || len(recent) != 1 || recent[0].Boot != "b2" || totals["esp-a"] != 2 {
			t.Fatalf("RecentBoots: %v %v %v", recent, totals, err)
		}
		db, err := r.DeviceBoots(ctx, "esp-a")
		if err != nil || len(db) != 2 || db[0].Boot != "b1" {
			t.Fatalf("DeviceBoots: %v %v", db, err)
		}
		var page []string
		err = r.Messages(ctx, inlet.Query{Device: "esp-a", Limit: 3, Last: true}, func(m *inlet.Stored) error {
			page = append(page, string(m.Payload))
			return nil
		})
		if err != nil || strings.Join(page, ",") != "t=23,t=24,t=25" {
			t.Fatalf("newest 3 of esp-a: %v %v", page, err)
		}
		// A time range: the rows received from the 10th row's time on, up to the 20th's.
		var at []int64
		r.Messages(ctx, inlet.Query{}, func(m *inlet.Stored) error { at = append(at, m.ReceivedAt); return nil })
		var want, n int
		for _, a := range at {
			if a >= at[10] && a < at[20] {
				want++
			}
		}
		err = r.Messages(ctx, inlet.Query{Since: at[10], Until: at[20]}, func(*inlet.Stored) error { n++; return nil })
		if err != nil || n != want || n < 10 {
			t.Fatalf("time range: %d rows, want %d, %v", n, want, err)
		}
	}
}

func compare(t testing.TB, what string, got, want state) {
	t.Helper()
	if !reflect.DeepEqual(got.Devices, want.Devices) {
		t.Errorf("%s: devices\n got %+v\nwant %+v", what, got.Devices, want.Devices)
	}
	if !reflect.DeepEqual(got.Boots, want.Boots) {
		t.Errorf("%s: boots\n got %+v\nwant %+v", what, got.Boots, want.Boots)
	}
	if !reflect.DeepEqual(got.Rows, want.Rows) {
		t.Errorf("%s: %d rows, want %d\n got %q\nwant %q", what, len(got.Rows), len(want.Rows), got.Rows, want.Rows)
	}
}

// TestTwoNodesExactAccounting: a device whose messages a round-robin balancer
// spreads over two nodes sharing one database gets the accounting one node
// gives it, to the last field.
func TestTwoNodesExactAccounting(t *testing.T) {
	one := open(t, pgtest.URL(t))
	single := newNode(t, one)
	url := pgtest.URL(t)
	a, b := newNode(t, open(t, url)), newNode(t, open(t, url))
	for i, m := range traffic() {
		single.send(t, m)
		if i%2 == 0 {
			a.send(t, m)
		} else {
			b.send(t, m)
		}
	}
	want := readState(t, one)
	compare(t, "two nodes", readState(t, open(t, url)), want)
}

// TestResendToOtherNode: a resend that reaches the other node is acknowledged
// and not stored again, and a hello on either node answers the last= the
// other one made durable.
func TestResendToOtherNode(t *testing.T) {
	url := pgtest.URL(t)
	sa, sb := open(t, url), open(t, url)
	a, b := newNode(t, sa), newNode(t, sb)
	if d := b.w.Durable("esp-r", "b1"); d != 0 {
		t.Fatalf("hello before anything: last=%d", d)
	}
	for seq := int64(1); seq <= 5; seq++ {
		a.send(t, acked("esp-r", "b1", int(seq), seq))
	}
	if _, ok := b.w.KnownDurable("esp-r", "b1"); ok {
		t.Fatal("node b answers a hello from memory; another node may have advanced the sequence")
	}
	if d := b.w.Durable("esp-r", "b1"); d != 5 {
		t.Fatalf("hello on node b after node a stored 1..5: last=%d, want 5", d)
	}
	var resend []inlet.Message
	for seq := int64(3); seq <= 7; seq++ {
		resend = append(resend, acked("esp-r", "b1", int(seq)+10, seq))
	}
	b.send(t, resend...) // every one acknowledged
	if d := a.w.Durable("esp-r", "b1"); d != 7 {
		t.Fatalf("hello on node a after node b stored 6..7: last=%d, want 7", d)
	}
	st := readState(t, sa)
	if len(st.Rows) != 7 {
		t.Fatalf("%d rows stored, want 7 (3..5 resent to the other node are duplicates): %q", len(st.Rows), st.Rows)
	}
	if d := st.Devices[0]; d.Messages != 7 || d.Duplicates != 3 || d.Missing != 0 {
		t.Fatalf("device after the resend: %+v", d)
	}
}

// TestCursorNeverSkips: with two nodes committing at once, a reader paging by
// id (as export, tail and /api/stream do) sees every committed row exactly
// once.
func TestCursorNeverSkips(t *testing.T) {
	url := pgtest.URL(t)
	reader := open(t, url)
	stores := []*postgres.Store{open(t, url), open(t, url)}
	const perWriter, batches = 2000, 200
	var wg sync.WaitGroup
	for n, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				var msgs []inlet.Message
				for j := range perWriter / batches {
					msgs = append(msgs, plain(fmt.Sprintf("10.0.%d.%d", n, j), i, int64(i)))
				}
				ledger := inlet.Ledger{Devices: map[string]*inlet.Device{}, Boots: map[inlet.BootKey]*inlet.Boot{}}
				if _, _, err := s.CommitAccounted(context.Background(), &ledger, msgs); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := make(map[int64]bool)
	var after int64
	poll := func() {
		err := reader.Messages(context.Background(), inlet.Query{AfterID: after}, func(m *inlet.Stored) error {
			if seen[m.ID] {
				t.Fatalf("row %d delivered twice", m.ID)
			}
			seen[m.ID] = true
			after = m.ID
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		poll()
	}
	poll()
	var total int
	if err := reader.Messages(context.Background(), inlet.Query{}, func(*inlet.Stored) error { total++; return nil }); err != nil {
		t.Fatal(err)
	}
	if total != 2*perWriter || len(seen) != total {
		t.Fatalf("the paging reader saw %d rows of %d committed (want %d)", len(seen), total, 2*perWriter)
	}
}

// TestRefusesNonDurable: a server, database or URL with synchronous_commit
// off is refused with a message saying what to change.
func TestRefusesNonDurable(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	u, _ := neturl.Parse(url)
	name := strings.TrimPrefix(u.Path, "/")
	if err := pgtest.Exec(ctx, url, "ALTER DATABASE "+name+" SET synchronous_commit = off"); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.Open(ctx, url, postgres.Options{})
	if !errors.Is(err, postgres.ErrNotDurable) || !strings.Contains(err.Error(), "synchronous_commit is off") {
		t.Fatalf("open with synchronous_commit off: %v", err)
	}
	if err := pgtest.Exec(ctx, url, "ALTER DATABASE "+name+" RESET synchronous_commit"); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("open once synchronous_commit is on again: %v", err)
	}
	s.Close()
	// In the URL.
	_, err = postgres.Open(ctx, url+"&options=-c%20synchronous_commit%3Doff", postgres.Options{})
	if !errors.Is(err, postgres.ErrNotDurable) {
		t.Fatalf("open with synchronous_commit=off in the URL: %v", err)
	}
}

// TestMigrateConcurrently: nodes starting at once on an empty database take
// turns; each step is applied once.
func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	// A reader refuses a database without the schema, and migrates nothing.
	if _, err := postgres.Open(ctx, url, postgres.Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "not an inlet database") {
		t.Fatalf("read-only open of an empty database: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(ctx, url, postgres.Options{})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, url)
	_ = s
	r, err := postgres.Open(ctx, url, postgres.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	var steps, top int
	if err := queryRow(ctx, url, "SELECT count(*), max(version) FROM inlet_schema", &steps, &top); err != nil {
		t.Fatal(err)
	}
	if steps != postgres.SchemaVersion() || top != postgres.SchemaVersion() {
		t.Fatalf("inlet_schema: %d steps up to %d, want %d", steps, top, postgres.SchemaVersion())
	}
	// A newer schema is refused by readers and writers.
	if err := pgtest.Exec(ctx, url, "INSERT INTO inlet_schema (version, name) VALUES ($1, 'future')", postgres.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		if _, err := postgres.Open(ctx, url, postgres.Options{ReadOnly: ro}); err == nil || !strings.Contains(err.Error(), "newer inlet") {
			t.Fatalf("open (read-only %v) of a newer schema: %v", ro, err)
		}
	}
}

func queryRow(ctx context.Context, url, sql string, dest ...any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql).Scan(dest...)
}

// TestPostgresRestart: after PostgreSQL restarts (stopped with -m immediate,
// as a crash), the store's commits fail, then succeed again on a new
// connection, and nothing committed before is lost.
func TestPostgresRestart(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.URL(t))
	l := newLedger()
	if _, _, err := s.CommitAccounted(ctx, l, []inlet.Message{plain("192.0.2.9", 0, 1)}); err != nil {
		t.Fatal(err)
	}
	pgtest.Restart(t, "immediate")
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, err := s.CommitAccounted(ctx, l, []inlet.Message{plain("192.0.2.9", 1, 2)})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no commit within 30 s of the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ds, err := s.Devices(ctx)
	if err != nil || len(ds) != 1 || ds[0].Messages != 2 {
		t.Fatalf("after the restart: %+v %v", ds, err)
	}
}

// TestLostCommitAnswer: a COMMIT that succeeded but whose answer was lost (the
// connection died) is not stored a second time by the writer's retry: the
// retry learns from the server that it committed.
func TestLostCommitAnswer(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.URL(t))
	lost := true
	postgres.SetAfterCommit(s, func() error {
		if lost {
			lost = false
			return errors.New("connection reset by peer")
		}
		return nil
	})
	l := newLedger()
	msgs := []inlet.Message{plain("192.0.2.10", 0, 1), plain("192.0.2.10", 1, 2), acked("esp-l", "b1", 2, 1)}
	if _, _, err := s.CommitAccounted(ctx, l, msgs); err == nil {
		t.Fatal("the first attempt reported success")
	}
	if len(l.Devices) != 0 {
		t.Fatalf("the ledger took a batch not known to be committed: %v", l.Devices)
	}
	b, dups, err := s.CommitAccounted(ctx, l, msgs)
	if err != nil || len(b.Messages) != 3 || dups != 0 {
		t.Fatalf("retry: %v, %d dups, %v", b, dups, err)
	}
	st := readState(t, s)
	if len(st.Rows) != 3 || st.Devices[0].Messages != 2 || st.Devices[1].Messages != 1 {
		t.Fatalf("after the retry: %d rows, devices %+v", len(st.Rows), st.Devices)
	}
	if l.Devices["192.0.2.10"].Messages != 2 {
		t.Fatalf("the ledger after the retry: %+v", l.Devices["192.0.2.10"])
	}
	// The next batch goes on from there.
	if _, _, err := s.CommitAccounted(ctx, l, []inlet.Message{plain("192.0.2.10", 3, 3)}); err != nil {
		t.Fatal(err)
	}
	if st := readState(t, s); len(st.Rows) != 4 || st.Devices[0].Messages != 3 {
		t.Fatalf("after one more: %d rows, devices %+v", len(st.Rows), st.Devices)
	}
}

// TestPrune: serve --retain deletes old messages and keeps the accounting.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.URL(t))
	var msgs []inlet.Message
	for i := range 30 {
		msgs = append(msgs, plain("192.0.2.11", i, int64(i+1)))
	}
	if _, _, err := s.CommitAccounted(ctx, newLedger(), msgs); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(ctx, base+10*int64(time.Millisecond))
	if err != nil || n != 10 {
		t.Fatalf("pruned %d, %v; want 10", n, err)
	}
	st := readState(t, s)
	if len(st.Rows) != 20 || !strings.Contains(st.Rows[0], `"11"`) || st.Devices[0].Messages != 30 {
		t.Fatalf("after pruning: %d rows, first %q, device %+v", len(st.Rows), st.Rows[0], st.Devices[0])
	}
}

// TestReusedXID: a server that crashed before flushing any WAL of a batch's
// transaction may give its id to another transaction after recovery, which
// commits. The retry of the batch must not take "that id committed" for its
// own commit: it would acknowledge readings that were never stored.
func TestReusedXID(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.URL(t))
	l := newLedger()
	// A committed transaction whose id the crash will "reuse": a batch whose
	// COMMIT answer is lost, then resolved as committed by the retry.
	lost := true
	postgres.SetAfterCommit(s, func() error {
		if lost {
			lost = false
			return errors.New("connection reset by peer")
		}
		return nil
	})
	first := []inlet.Message{acked("esp-x", "b1", 1, 1)}
	if _, _, err := s.CommitAccounted(ctx, l, first); err == nil {
		t.Fatal("the first attempt reported success")
	}
	committedXID := postgres.PendingXID(s)
	if _, _, err := s.CommitAccounted(ctx, l, first); err != nil {
		t.Fatal(err)
	}
	// The next batch's transaction dies before its COMMIT (ended here), and its
	// id is then found committed: someone else's transaction.
	postgres.SetBeforeCommit(s, func(ctx context.Context, tx pgx.Tx) {
		postgres.SetBeforeCommit(s, nil)
		tx.Rollback(ctx)
	})
	next := []inlet.Message{acked("esp-x", "b1", 2, 2), acked("esp-x", "b1", 3, 3), plain("192.0.2.12", 4, 7)}
	if _, _, err := s.CommitAccounted(ctx, l, next); err == nil {
		t.Fatal("a batch whose transaction ended before COMMIT reported success")
	}
	if postgres.PendingXID(s) == 0 {
		t.Fatal("no pending commit after a failed COMMIT")
	}
	postgres.SetPendingXID(s, committedXID)
	if _, _, err := s.CommitAccounted(ctx, l, next); err != nil {
		t.Fatal(err)
	}
	st := readState(t, s)
	if len(st.Rows) != 4 {
		t.Fatalf("%d rows stored, want 4 (the retried batch taken as committed by another transaction's id?):\n%s",
			len(st.Rows), strings.Join(st.Rows, "\n"))
	}
}
