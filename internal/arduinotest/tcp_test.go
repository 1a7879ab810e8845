package arduinotest

import (
	"path/filepath"
	"testing"
	"time"
)

// 10,000 readings over TCP through a proxy that cuts the connection at random
// (often mid-line), with the server SIGKILLed and restarted in the middle:
// every reading is stored exactly once, nothing is missing, and the device
// never resends what the server had confirmed.
func TestTCPCutsAndServerKill(t *testing.T) {
	t.Parallel()
	const n = 10000
	dir := t.TempDir()
	db := filepath.Join(dir, "inlet.db")
	srv := startServer(t, db)
	proxy := newCutProxy(t, srv.ready.TCP, 2000, 12000) // ~12 bytes a line: a cut every ~600 readings
	dev := startDevice(t, "tcp", proxy.addr(), "esp-tcp", filepath.Join(dir, "rtc"))
	dev.do("backoff 20 300", 5*time.Second)

	start := time.Now()
	dev.send("send 10000 wait 0")
	// Kill the server once about half the readings are acknowledged.
	deadline := time.Now().Add(40 * time.Second)
	for {
		_, _, acked, _ := proxy.stats()
		if acked >= n/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d acknowledged after 40 s", acked)
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.kill(t)
	srv = startServer(t, db)
	proxy.retarget(srv.ready.TCP)

	s := dev.next("send", 60*time.Second)
	if !s.OK {
		t.Fatalf("send: %+v", s)
	}
	s = dev.do("flush 20000", 30*time.Second)
	if !s.OK || s.Pending != 0 || s.Acked != n || s.Dropped != 0 || s.Next != n+1 {
		t.Fatalf("after flush: %+v; want all %d acknowledged, none dropped", s, n)
	}
	took := time.Since(start)
	srv.stop(t)

	conns, cuts, _, problems := proxy.stats()
	for _, p := range problems {
		t.Error("protocol:", p)
	}
	if cuts < 5 {
		t.Errorf("only %d cuts: the test did not exercise reconnects", cuts)
	}
	d := devices(t, db)["esp-tcp"]
	if d.Messages != n || d.Missing != 0 || d.Gaps != 0 || len(d.Boots) != 1 {
		t.Fatalf("inlet devices: %+v; want %d messages, 0 missing, one boot", d, n)
	}
	if b := d.Boots[0]; b.Boot != s.Boot || b.LastSeq != n || b.Durable != n || b.Missing != 0 {
		t.Fatalf("boot %+v; want %s with %d durable, none missing", b, s.Boot, n)
	}
	checkRows(t, db, "esp-tcp", s.Boot, seqs(1, n))
	t.Logf("%d readings stored once over %d connections (%d cut, one server SIGKILL) in %s; %d resends de-duplicated by the server",
		n, conns, cuts, took.Round(time.Millisecond), d.Duplicates)
}

// The server is down while the device keeps reading: its buffer overflows and
// drops the oldest readings; once the server is back, the server's missing
// count is exactly the library's dropped().
func TestOverflowMissingEqualsDropped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "inlet.db")
	srv := startServer(t, db)
	proxy := newCutProxy(t, srv.ready.TCP, 0, 0)
	dev := startDevice(t, "tcp", proxy.addr(), "esp-overflow", filepath.Join(dir, "rtc"))
	dev.do("backoff 20 200", 5*time.Second)
	if s := dev.do("send 10 wait 0", 10*time.Second); !s.OK {
		t.Fatalf("send: %+v", s)
	}
	if s := dev.do("flush 10000", 15*time.Second); !s.OK || s.Acked != 10 {
		t.Fatalf("flush: %+v", s)
	}
	srv.stop(t)

	const more = 100
	s := dev.do("send 100 drop 2000", 30*time.Second) // a reading every 2 ms, server down
	if want := int64(more - s.Capacity); s.Dropped != want || s.Pending != s.Capacity || s.Error == "" {
		t.Fatalf("server down: %+v; want %d dropped, a full buffer of %d, an error", s, want, s.Capacity)
	}
	dropped := s.Dropped

	srv = startServer(t, db)
	proxy.retarget(srv.ready.TCP)
	s = dev.do("flush 20000", 30*time.Second)
	if !s.OK || s.Pending != 0 || s.Dropped != dropped {
		t.Fatalf("server back: %+v", s)
	}
	srv.stop(t)
	d := devices(t, db)["esp-overflow"]
	if d.Missing != s.Dropped || len(d.Boots) != 1 || d.Boots[0].Missing != s.Dropped {
		t.Fatalf("inlet devices: %+v; want missing %d (the library's dropped())", d, s.Dropped)
	}
	kept := seqs(1, 10)
	kept = append(kept, seqs(11+dropped, 10+more)...)
	checkRows(t, db, "esp-overflow", s.Boot, kept)
	if r := d.Boots[0].MissingRange; len(r) != 1 || r[0] != [2]int64{11, 10 + dropped} {
		t.Errorf("missing ranges %v; want [[11 %d]] (the oldest dropped first)", r, 10+dropped)
	}
}
