package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

// retainClient is an acknowledged device for TestRetainUnderAckedLoad: it
// sends one reading, waits for its ACK, and every so often reconnects with the
// same boot and resends readings it already had acknowledged, the oldest of
// them long pruned.
type retainClient struct {
	id, addr string
	sent     map[int64]time.Time // first send time of every acknowledged seq
	resends  int64               // resent readings, each acknowledged
	last     int64               // highest seq acknowledged
}

type ackConn struct {
	c net.Conn
	r *bufio.Reader
}

func (rc *retainClient) dial() (*ackConn, int64, error) {
	c, err := net.DialTimeout("tcp", rc.addr, 5*time.Second)
	if err != nil {
		return nil, 0, err
	}
	a := &ackConn{c: c, r: bufio.NewReader(c)}
	l, err := a.roundTrip("INLET/1 id=" + rc.id + " boot=b1\n")
	if err != nil {
		c.Close()
		return nil, 0, err
	}
	last, ok := strings.CutPrefix(l, "INLET/1 OK last=")
	n, err := strconv.ParseInt(last, 10, 64)
	if !ok || err != nil {
		c.Close()
		return nil, 0, fmt.Errorf("%s: hello answered %q", rc.id, l)
	}
	return a, n, nil
}

// roundTrip sends line and reads one answer.
func (a *ackConn) roundTrip(line string) (string, error) {
	a.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := a.c.Write([]byte(line)); err != nil {
		return "", err
	}
	s, err := a.r.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

func (a *ackConn) send(seq int64) error {
	l, err := a.roundTrip(fmt.Sprintf("%d t=%d\n", seq, seq))
	if err != nil {
		return err
	}
	if l != "ACK "+strconv.FormatInt(seq, 10) {
		return fmt.Errorf("seq %d answered %q", seq, l)
	}
	return nil
}

// run sends until stop closes, reconnecting every 40 readings to resend the
// last 3 and the first 3.
func (rc *retainClient) run(stop <-chan struct{}) error {
	a, last, err := rc.dial()
	if err != nil {
		return err
	}
	defer func() { a.c.Close() }()
	if last != 0 {
		return fmt.Errorf("%s: new boot answered last=%d", rc.id, last)
	}
	tick := time.NewTicker(15 * time.Millisecond)
	defer tick.Stop()
	for seq := int64(1); ; seq++ {
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
		at := time.Now()
		if err := a.send(seq); err != nil {
			return fmt.Errorf("%s: %w", rc.id, err)
		}
		rc.sent[seq], rc.last = at, seq
		if seq%40 == 0 {
			a.c.Close()
			if a, last, err = rc.dial(); err != nil {
				return err
			}
			if last != seq {
				return fmt.Errorf("%s: hello after %d acknowledged answered last=%d: the prune changed the acknowledged sequence", rc.id, seq, last)
			}
			for _, r := range []int64{1, 2, 3, seq - 2, seq - 1, seq} {
				if err := a.send(r); err != nil {
					return fmt.Errorf("%s: resend: %w", rc.id, err)
				}
				rc.resends++
			}
		}
	}
}

// serve --retain prunes while acknowledged clients send and resend: nothing
// acknowledged and newer than the retention is missing, nothing is stored
// twice, a resend of a pruned reading is acknowledged and not stored again
// (after a restart too, when the server knows the devices only from the
// store), and the devices' accounting (messages, duplicates, no loss) is what
// the clients did, as if nothing had been pruned.
func TestRetainUnderAckedLoad(t *testing.T) {
	const retain = 3 * time.Second
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db, "--retain", retain.String())
	var clients []*retainClient
	for i := range 6 {
		clients = append(clients, &retainClient{id: fmt.Sprintf("sensor-%d", i), addr: srv.ready.TCP, sent: map[int64]time.Time{}})
	}
	stop := make(chan struct{})
	errs := make(chan error, len(clients))
	var wg sync.WaitGroup
	for _, rc := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- rc.run(stop) }()
	}
	ro, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	count := func(where string, args ...any) int64 {
		var n int64
		if err := ro.QueryRow("SELECT count(*) FROM messages "+where, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Load until two prunes have deleted something under it: the first
	// readings of every client are gone.
	waitFor(t, "two prunes under load", 30*time.Second, func() bool {
		return strings.Count(srv.stderr.String(), "retention: deleted old messages") >= 2 && count("WHERE seq <= 3") == 0
	})
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// One more prune once the devices are quiet (their state then is the
	// last one written), a restart, so the writer knows the devices only from
	// the store, then
	// resend pruned readings: each is acknowledged, none stored again.
	prunes := strings.Count(srv.stderr.String(), "retention: deleted old messages")
	waitFor(t, "a prune after the load", 30*time.Second, func() bool {
		return strings.Count(srv.stderr.String(), "retention: deleted old messages") > prunes
	})
	srv.stop(t, syscall.SIGTERM)
	pruneLog := srv.stderr.String()
	srv = startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db, "--retain", retain.String())
	for _, rc := range clients {
		rc.addr = srv.ready.TCP
		a, last, err := rc.dial()
		if err != nil {
			t.Fatal(err)
		}
		if last != rc.last {
			t.Errorf("%s: hello answered last=%d, want %d", rc.id, last, rc.last)
		}
		for seq := int64(1); seq <= 10; seq++ {
			if err := a.send(seq); err != nil {
				t.Fatalf("%s: resending pruned %d: %v", rc.id, seq, err)
			}
			rc.resends++
		}
		a.c.Close()
	}
	srv.stop(t, syscall.SIGTERM)
	stopAt := time.Now() // the server has exited: no prune after this

	if n := count("WHERE seq <= 10"); n != 0 {
		t.Errorf("%d pruned readings stored again by their resends", n)
	}
	rows, err := ro.Query("SELECT device, boot, seq, count(*) FROM messages GROUP BY device, boot, seq HAVING count(*) > 1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var dev, boot string
		var seq, n int64
		rows.Scan(&dev, &boot, &seq, &n)
		t.Errorf("%s/%s seq %d stored %d times", dev, boot, seq, n)
	}
	rows.Close()
	devs := devices(t, db)
	var kept, pruned int
	for _, rc := range clients {
		stored := map[int64]bool{}
		rs, err := ro.Query("SELECT seq FROM messages WHERE device = ?", rc.id)
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var seq int64
			rs.Scan(&seq)
			stored[seq] = true
		}
		rs.Close()
		for seq, at := range rc.sent {
			switch {
			case stored[seq]:
				kept++
			case at.After(stopAt.Add(-retain)):
				// Received after at, so after every prune's cutoff.
				t.Errorf("%s: seq %d, acknowledged and sent %s before the stop (retention %s), is missing",
					rc.id, seq, stopAt.Sub(at).Round(time.Millisecond), retain)
			default:
				pruned++
			}
		}
		for seq := range stored {
			if _, ok := rc.sent[seq]; !ok {
				t.Errorf("%s: seq %d stored but never sent", rc.id, seq)
			}
		}
		d := devs[rc.id]
		if d.Messages != int64(len(rc.sent)) || d.Duplicates != rc.resends || d.Missing != 0 || d.Gaps != 0 {
			t.Errorf("%s after the prunes: messages %d duplicates %d missing %d gaps %d; the client had %d acknowledged, %d resent, none lost",
				rc.id, d.Messages, d.Duplicates, d.Missing, d.Gaps, len(rc.sent), rc.resends)
		}
		b, ok, err := openDB(t, db).Boot(context.Background(), rc.id, "b1")
		if err != nil || !ok || b.Last != rc.last || len(b.Missing) != 0 || b.Durable() != rc.last {
			t.Errorf("%s: boot after the prunes %+v (ok %v, %v), want last %d and nothing missing", rc.id, b, ok, err, rc.last)
		}
	}
	t.Logf("%d acknowledged readings kept, %d pruned, by %d prunes", kept, pruned, strings.Count(pruneLog, "retention: deleted old messages"))
	if pruned == 0 || kept == 0 {
		t.Fatalf("%d kept and %d pruned: the test did not prune under load", kept, pruned)
	}
}

// serve --max-db-size deletes the oldest messages once the database's pages
// in use exceed the bound, down to 90% of it, keeps the newest and the
// devices' accounting, and refuses sizes it cannot use.
func TestServeMaxDBSize(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	st, err := sqlite.Open(context.Background(), db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 15000
	pad := strings.Repeat("x", 200)
	remote := netip.MustParseAddrPort("192.0.2.7:4000")
	start := time.Now().Add(-time.Hour).UnixNano()
	for i := 0; i < n; i += 1000 {
		b := &inlet.Batch{}
		for j := i; j < i+1000; j++ {
			b.Messages = append(b.Messages, inlet.Message{ReceivedAt: start + int64(j)*1e6, Device: "192.0.2.7",
				Transport: inlet.TCP, Remote: remote, Payload: []byte(fmt.Sprintf("%d %s", j, pad))})
		}
		b.Devices = []inlet.Device{{ID: "192.0.2.7", Messages: int64(i + 1000), FirstSeen: start, LastSeen: start + int64(i+999)*1e6}}
		if err := st.Commit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	used, err := st.UsedBytes(context.Background())
	st.Close()
	if err != nil || used < 3e6 {
		t.Fatalf("%d bytes in use after %d messages (%v)", used, n, err)
	}
	const bound = 2_000_000
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db, "--max-db-size", "2MB")
	waitFor(t, "a prune to size", 30*time.Second, func() bool {
		return strings.Contains(srv.stderr.String(), "retention: deleted the oldest messages (--max-db-size)")
	})
	if err := sendOnce("127.0.0.1", srv.ready.TCP, "after\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message sent after the prune", 10*time.Second, func() bool {
		ms := messages(t, db, inlet.Query{Last: true, Limit: 1})
		return len(ms) == 1 && string(ms[0].Payload) == "after"
	})
	srv.stop(t, syscall.SIGTERM)
	ro := openDB(t, db)
	if used, err := ro.UsedBytes(context.Background()); err != nil || used > bound*9/10+64<<10 {
		t.Errorf("%d bytes in use after the prune to size (%v), want at most 90%% of %d (and one new message)", used, err, bound)
	}
	kept := messages(t, db, inlet.Query{Device: "192.0.2.7"})
	if len(kept) == 0 || len(kept) > n/2 {
		t.Fatalf("%d of %d messages kept under a bound of about half their size", len(kept), n)
	}
	// The newest were kept, in one run up to the last.
	for i, m := range kept {
		if want := fmt.Sprintf("%d ", n-len(kept)+i); !strings.HasPrefix(string(m.Payload), want) {
			t.Fatalf("kept message %d of %d is %.10q, want the newest %d in order", i, len(kept), m.Payload, len(kept))
		}
	}
	if d := devices(t, db)["192.0.2.7"]; d.Messages != n {
		t.Errorf("the device's accounting after the prune: %d messages, want %d", d.Messages, n)
	}
	for _, bad := range []string{"0", "-5MB", "10XB", "1kB", "lots"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"serve", "--db", filepath.Join(t.TempDir(), "x.db"), "--max-db-size", bad}, &out, &errOut); code != 2 ||
			!strings.Contains(errOut.String(), "max-db-size") {
			t.Errorf("--max-db-size %s: exit %d, want 2 and the flag named:\n%s", bad, code, errOut.String())
		}
	}
}
