package arduinotest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/inletdev/inlet/internal/inlettest"
)

// 10,000 readings over acknowledged UDP through a path that drops 20% of the
// datagrams each way: every reading is stored exactly once, none missing.
func TestUDPLoss(t *testing.T) {
	t.Parallel()
	const n = 10000
	dir := t.TempDir()
	db := filepath.Join(dir, "inlet.db")
	srv := startServer(t, db)
	proxy := inlettest.NewLossyUDP(t, srv.ready.UDP, 0.2, 0.2)
	dev := startDevice(t, "udp", proxy.Addr(), "esp-udp", filepath.Join(dir, "rtc"))
	dev.do("retry 15", 5*time.Second)
	dev.do("backoff 20 300", 5*time.Second)
	start := time.Now()
	if s := dev.do("send 10000 wait 0", 60*time.Second); !s.OK {
		t.Fatalf("send: %+v", s)
	}
	s := dev.do("flush 20000", 30*time.Second)
	if !s.OK || s.Pending != 0 || s.Acked != n || s.Dropped != 0 {
		t.Fatalf("after flush: %+v; want all %d acknowledged", s, n)
	}
	took := time.Since(start)
	srv.stop(t)
	lost, passed := proxy.Counts()
	if lost[0] == 0 || lost[1] == 0 {
		t.Fatalf("the proxy dropped %v datagrams: the loss was not exercised", lost)
	}
	d := devices(t, db)["esp-udp"]
	if d.Messages != n || d.Missing != 0 || d.Gaps != 0 || len(d.Boots) != 1 || d.Boots[0].Missing != 0 {
		t.Fatalf("inlet devices: %+v; want %d messages, none missing, one boot", d, n)
	}
	checkRows(t, db, "esp-udp", s.Boot, seqs(1, n))
	t.Logf("%d readings stored once in %s; datagrams up %d passed %d dropped, down %d passed %d dropped; %d resends de-duplicated",
		n, took.Round(time.Millisecond), passed[0], lost[0], passed[1], lost[1], d.Duplicates)
}
