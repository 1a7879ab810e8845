package arduinotest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/inletdev/inlet/internal/inlettest"
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
	proxy := inlettest.NewLossyUDP(t, srv.ready.UDP, 0, 1)
	dev = startDevice(t, "udp", proxy.Addr(), id, rtc)
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

// More unacknowledged readings than RTC memory holds at deep sleep: the newest
// that fit are kept, the others are counted in dropped(), and the server's
// missing count equals it once the device is back.
func TestDeepSleepRTCFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "inlet.db")
	rtc := filepath.Join(dir, "rtc")
	const id = "esp-rtcfull"
	// A UDP socket that never answers stands for a server out of reach.
	void, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer void.Close()
	dev := startDevice(t, "udp", void.LocalAddr().String(), id, rtc)
	boot := dev.begin.Boot
	const n, size = 12, 40 // 12 readings of 40 bytes: 46 bytes each buffered
	for range n {
		if s := dev.do(fmt.Sprintf("sendlen %d", size), 5*time.Second); !s.OK {
			t.Fatalf("sendlen: %+v", s)
		}
	}
	if s := dev.do("status", 5*time.Second); s.Pending != n || s.Dropped != 0 {
		t.Fatalf("before sleep: %+v; want %d pending", s, n)
	}
	dev.sleep()

	srv := startServer(t, db)
	dev = startDevice(t, "udp", srv.ready.UDP, id, rtc)
	kept := int64(dev.begin.Pending)
	if !dev.begin.Resumed || dev.begin.Boot != boot || kept == 0 || kept >= n || dev.begin.Dropped != n-kept {
		t.Fatalf("after wake: %+v; want boot %s resumed with some of the %d readings, the rest dropped", dev.begin, boot, n)
	}
	dev.do("retry 50", 5*time.Second)
	s := dev.do("flush 5000", 10*time.Second)
	if !s.OK || s.Acked != kept {
		t.Fatalf("flush: %+v", s)
	}
	srv.stop(t)
	checkRows(t, db, id, boot, seqs(n-kept+1, n))
	d := devices(t, db)[id]
	if d.Missing != s.Dropped || len(d.Boots) != 1 || d.Boots[0].Missing != s.Dropped {
		t.Fatalf("inlet devices: %+v; want missing %d = dropped()", d, s.Dropped)
	}
	t.Logf("%d of %d readings of %d bytes kept in RTC memory over the sleep", kept, n, size)
}
