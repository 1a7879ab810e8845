package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

// The rollups after SIGKILLs under load: a database holding 25 minutes of
// older readings in no rollup yet (the server's first commit writes them), then
// four TCP devices streaming readings while the server is killed and restarted
// three times. At the end every bucket is closed (by one message two hours
// later, committed here) and the rollups equal a recomputation from the
// stored messages.
func TestRollupsAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test")
	}
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "inlet.db")
	s, err := sqlite.Open(ctx, db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The older readings go in by SQL, behind the writer's back: in no
	// rollup, before the frontier (0 in a new database) moves.
	raw, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-25 * time.Minute).UnixNano()
	for i := range 25 * 6 {
		_, err := raw.Exec("INSERT INTO messages_merged (received_at, device, transport, remote, payload, fields) VALUES (?, '127.0.0.9', 'tcp', '127.0.0.9:1', 'x', ?)",
			old+int64(i)*10e9, fmt.Sprintf(`{"t":%d.5,"h":%d}`, i%30, i%7))
		if err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	addr := freeTCPAddr(t)
	args := []string{"--tcp", addr, "--udp", "", "--http", "", "--db", db}
	srv := startBinary(t, args...)
	var stop atomic.Bool
	var sent atomic.Int64
	var wg sync.WaitGroup
	for d := range 4 {
		wg.Go(func() {
			for k := 0; !stop.Load(); k++ {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					time.Sleep(20 * time.Millisecond) // the server is restarting
					continue
				}
				for j := 0; j < 200 && !stop.Load(); j++ {
					if _, err := fmt.Fprintf(c, "t=%d.%d,h=%d,dev=d%d\n", j%40, d, k%100, d); err != nil {
						break
					}
					sent.Add(1)
					if j%20 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
				c.Close()
			}
		})
	}
	for range 3 {
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		srv.cmd.Process.Signal(syscall.SIGKILL)
		<-srv.exited
		srv.exited <- nil
		srv = startBinary(t, args...)
	}
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	srv.stop(t, syscall.SIGTERM)

	s, err = sqlite.Open(ctx, db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var frontier int64
	if frontier, err = s.RollupFrontier(ctx); err != nil || frontier*1e9 < old+10*60e9 {
		t.Fatalf("frontier %d (%v): the server wrote no rollups of the older readings", frontier, err)
	}
	last := time.Now().Add(2 * time.Hour).UnixNano()
	if err := s.Commit(ctx, &inlet.Batch{Messages: []inlet.Message{{ReceivedAt: last, Device: "x", Transport: inlet.UDP, Payload: []byte("1"), Fields: []byte(`{"value":1}`)}}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.CheckRollups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := len(messages(t, db, inlet.Query{}))
	if stored < 25*6+1000 || n < 10 {
		t.Fatalf("%d messages stored (%d sent), %d rollup rows compared: too little traffic to test", stored, sent.Load(), n)
	}
	t.Logf("%d messages sent, %d stored; %d rollup rows equal to the recomputation after 3 SIGKILLs", sent.Load(), stored, n)
}

// --retain-rollups shorter than --retain is refused: charts would lose what
// the messages still hold.
func TestRetainRollupsValidate(t *testing.T) {
	c := DefaultConfig()
	c.Retain, c.RetainRollups = 30*24*time.Hour, 24*time.Hour
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--retain-rollups") {
		t.Fatalf("--retain 30d --retain-rollups 1d: %v, want an error naming --retain-rollups", err)
	}
	c.RetainRollups = 730 * 24 * time.Hour
	if err := c.Validate(); err != nil {
		t.Fatalf("--retain 30d --retain-rollups 730d: %v", err)
	}
	c.Retain = 0
	if err := c.Validate(); err != nil {
		t.Fatalf("--retain-rollups alone: %v", err)
	}
}

// serve --retain-rollups deletes old rollups in the retention job, and only
// those; --retain alone would keep them.
func TestServeRetainRollups(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	s, err := sqlite.Open(context.Background(), db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	now := time.Now().Unix() / 3600 * 3600
	for _, bucket := range []int64{now - 3*86400, now - 2*86400, now - 3600} { // 3 days, 2 days and an hour old
		if _, err := raw.Exec("INSERT INTO rollups VALUES ('d', 3600, ?, '', 1, 0, 0, 0)", bucket); err != nil {
			t.Fatal(err)
		}
	}
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db, "--retain-rollups", "36h")
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		if err := raw.QueryRow("SELECT count(*) FROM rollups").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rollup rows after 20 s, want the hour-old one only", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.stop(t, syscall.SIGTERM)
	if !strings.Contains(srv.stderr.String(), "retention: deleted old rollups") {
		t.Fatalf("no retention log line:\n%s", srv.stderr.String())
	}
}
