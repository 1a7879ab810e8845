package arduinotest

import (
	"path/filepath"
	"testing"
	"time"
)

// The server's ERR replies: a wrong token is refused at the hello (the
// readings stay buffered, and the device backs off instead of hammering the
// server); a reading over the server's --max-message is refused alone (ERR
// <seq> too-long), given up and counted in dropped(), and the server lists
// exactly that seq as missing. Over TCP and over UDP.
func TestServerErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "inlet.db")
	srv := startServer(t, db, "--token", "s3cret", "--max-message", "80")

	bad := startDevice(t, "tcp", srv.ready.TCP, "esp-badtoken", filepath.Join(dir, "rtc-bad"), "wrong")
	bad.do("backoff 50 100000", 5*time.Second)
	bad.do("send 2 drop 0", 5*time.Second)
	var s status
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		if s = bad.do("loop 100", 5*time.Second); s.Error == "unauthorized" {
			break
		}
	}
	if s.Error != "unauthorized" || s.Pending != 2 || s.Acked != 0 || s.Connected {
		t.Fatalf("wrong token: %+v; want error unauthorized and both readings still pending", s)
	}

	for _, transport := range []string{"tcp", "udp"} {
		addr := srv.ready.TCP
		if transport == "udp" {
			addr = srv.ready.UDP
		}
		id := "esp-errors-" + transport
		dev := startDevice(t, transport, addr, id, filepath.Join(dir, "rtc-"+transport), "s3cret")
		dev.do("retry 200", 5*time.Second)
		dev.do("send 3 drop 0", 5*time.Second)
		if s := dev.do("sendlen 200", 5*time.Second); !s.OK {
			t.Fatalf("%s: a 200-byte reading was not buffered: %+v", transport, s)
		}
		dev.do("send 3 drop 0", 5*time.Second)
		s := dev.do("flush 5000", 10*time.Second)
		// (lastError() said "rejected" then; a later hiccup may have replaced it.)
		if !s.OK || s.Acked != 6 || s.Dropped != 1 {
			t.Fatalf("%s: %+v; want 6 acknowledged, the long one dropped", transport, s)
		}
		checkRows(t, db, id, s.Boot, []int64{1, 2, 3, 5, 6, 7})
		d := devices(t, db)[id]
		if d.Missing != 1 || len(d.Boots) != 1 || len(d.Boots[0].MissingRange) != 1 ||
			d.Boots[0].MissingRange[0] != [2]int64{4, 4} {
			t.Fatalf("%s: inlet devices %+v; want seq 4 missing", transport, d)
		}
	}
	srv.stop(t)
	if d, ok := devices(t, db)["esp-badtoken"]; ok {
		t.Fatalf("a device with a wrong token was stored: %+v", d)
	}
}
