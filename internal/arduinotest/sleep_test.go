package arduinotest

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Deep sleep: the process exits and restarts with its RTC file kept (the
// ESP8266's RTC user memory). Each wake continues the same boot and sequence,
// readings that were not acknowledged before the sleep are sent after it, and
// nothing is stored twice. A power cycle (the RTC file deleted) and a
// corrupted RTC image each start a new boot.
func TestDeepSleep(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "inlet.db")
	rtc := filepath.Join(dir, "rtc")
	srv := startServer(t, db)
	const id = "esp-sleep"

	// Wake 1: a power-up. One reading over acknowledged UDP, as the example does.
	dev := startDevice(t, "udp", srv.ready.UDP, id, rtc)
	if dev.begin.Resumed || dev.begin.Next != 1 {
		t.Fatalf("first power-up: %+v", dev.begin)
	}
	boot := dev.begin.Boot
	dev.do("retry 50", 5*time.Second)
	dev.do("send 1 drop 0", 5*time.Second)
	if s := dev.do("flush 5000", 10*time.Second); !s.OK {
		t.Fatalf("wake 1 flush: %+v", s)
	}
	dev.sleep()

	// Wakes 2-4: the same boot continues, one reading each, over UDP and TCP.
	for wake := 2; wake <= 4; wake++ {
		transport, addr := "udp", srv.ready.UDP
		if wake == 3 {
			transport, addr = "tcp", srv.ready.TCP
		}
		dev = startDevice(t, transport, addr, id, rtc)
		if !dev.begin.Resumed || dev.begin.Boot != boot || dev.begin.Next != int64(wake) || dev.begin.Pending != 0 {
			t.Fatalf("wake %d: %+v; want boot %s resumed at seq %d", wake, dev.begin, boot, wake)
		}
		dev.do("retry 50", 5*time.Second)
		dev.do("send 1 drop 0", 5*time.Second)
		if s := dev.do("flush 5000", 10*time.Second); !s.OK || s.Acked != int64(wake) {
			t.Fatalf("wake %d flush: %+v", wake, s)
		}
		dev.sleep()
	}

	// Wake 5: every ACK is lost; the readings go back to sleep unacknowledged
	// (the server has stored them).
	proxy := newLossyUDP(t, srv.ready.UDP, 0, 1)
	dev = startDevice(t, "udp", proxy.addr(), id, rtc)
	dev.do("retry 50", 5*time.Second)
	dev.do("send 3 drop 0", 5*time.Second)
	if s := dev.do("flush 400", 5*time.Second); s.OK || s.Pending != 3 {
		t.Fatalf("wake 5 with every ACK lost: %+v; want 3 pending", s)
	}
	dev.sleep()

	// Wake 6: they are still pending, are resent, de-duplicated, acknowledged.
	dev = startDevice(t, "udp", srv.ready.UDP, id, rtc)
	if !dev.begin.Resumed || dev.begin.Boot != boot || dev.begin.Pending != 3 || dev.begin.Next != 8 {
		t.Fatalf("wake 6: %+v; want boot %s with 3 pending, next 8", dev.begin, boot)
	}
	dev.do("retry 50", 5*time.Second)
	if s := dev.do("flush 5000", 10*time.Second); !s.OK || s.Acked != 7 || s.Dropped != 0 {
		t.Fatalf("wake 6 flush: %+v", s)
	}
	dev.sleep()
	checkRows(t, db, id, boot, seqs(1, 7))

	// Power cycle: RTC memory is lost, a new boot starts at seq 1.
	if err := os.Remove(rtc); err != nil {
		t.Fatal(err)
	}
	dev = startDevice(t, "udp", srv.ready.UDP, id, rtc)
	if dev.begin.Resumed || dev.begin.Boot == boot || dev.begin.Next != 1 {
		t.Fatalf("after a power cycle: %+v; want a new boot at seq 1", dev.begin)
	}
	boot2 := dev.begin.Boot
	dev.do("retry 50", 5*time.Second)
	dev.do("send 2 drop 0", 5*time.Second)
	if s := dev.do("flush 5000", 10*time.Second); !s.OK {
		t.Fatalf("after power cycle: %+v", s)
	}
	dev.sleep()

	// A corrupted RTC image (one bit flipped in the next seq): a new boot too.
	img, err := os.ReadFile(rtc)
	if err != nil || len(img) != 512 {
		t.Fatalf("rtc file: %d bytes, %v", len(img), err)
	}
	img[16] ^= 0x10 // the next seq, inside the CRC
	if err := os.WriteFile(rtc, img, 0o644); err != nil {
		t.Fatal(err)
	}
	dev = startDevice(t, "udp", srv.ready.UDP, id, rtc)
	if dev.begin.Resumed || dev.begin.Boot == boot2 || dev.begin.Next != 1 {
		t.Fatalf("after a bad CRC: %+v; want a new boot", dev.begin)
	}
	dev.do("status", 5*time.Second)

	srv.stop(t)
	checkRows(t, db, id, boot, seqs(1, 7))
	checkRows(t, db, id, boot2, seqs(1, 2))
	d := devices(t, db)[id]
	if d.Messages != 9 || len(d.Boots) != 2 || d.Resets != 1 || d.Missing != 0 {
		t.Fatalf("inlet devices: %+v; want 9 messages in 2 boots, one reset, none missing", d)
	}
	if d.Duplicates < 3 {
		t.Errorf("duplicates %d: the readings whose ACKs were lost should have been resent", d.Duplicates)
	}
}
