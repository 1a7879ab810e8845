package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet"
)

// The tutorial device, exactly: connect, "N\r\n", close, repeat; 24 of them at
// once, each from its own address in 127.0.0.0/8.
func TestTutorialDevices(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	const devs, per = 24, 40
	var wg sync.WaitGroup
	errs := make(chan error, devs)
	for d := range devs {
		wg.Go(func() {
			src := fmt.Sprintf("127.0.0.%d", 10+d)
			for n := 1; n <= per; n++ {
				if err := sendOnce(src, m.tcpAddr(), fmt.Sprintf("%d\r\n", n)); err != nil {
					errs <- fmt.Errorf("device %s message %d: %w", src, n, err)
					return
				}
				// The sketch waits a second. Separate connections carry no order
				// between them: back to back on a loaded machine, one that waits
				// for the poller can be overtaken by more than the 16 values the
				// accounting takes as late, and would count as a reset.
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitCommitted(t, m, devs*per)
	MustClose(t, m)

	ds := devices(t, cfg.DB)
	if len(ds) != devs {
		t.Fatalf("devices: got %d, want %d", len(ds), devs)
	}
	for d := range devs {
		id := fmt.Sprintf("127.0.0.%d", 10+d)
		dev := ds[id]
		if dev.Messages != per || dev.Gaps != 0 || dev.Missing != 0 || dev.Duplicates != 0 || dev.Resets != 0 {
			t.Errorf("device %s: %+v; want %d messages and no loss", id, dev, per)
		}
		if high, ok := dev.LastCounter(); !ok || high != per {
			t.Errorf("device %s: last counter %d, want %d", id, high, per)
		}
		got := payloads(messages(t, cfg.DB, inlet.Query{Device: id}))
		slices.SortFunc(got, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
		for i, p := range got {
			if p != strconv.Itoa(i+1) {
				t.Fatalf("device %s: counters %v are not 1..%d", id, got, per)
			}
		}
		for _, msg := range messages(t, cfg.DB, inlet.Query{Device: id}) {
			if string(msg.Payload) != "1" {
				continue
			}
			if msg.Transport != inlet.TCP || msg.Remote.Addr().String() != id || msg.Seq != 0 || msg.Boot != "" {
				t.Errorf("device %s: stored row %+v", id, msg)
			}
			if string(msg.Fields) != `{"value":1}` {
				t.Errorf("fields %s, want {\"value\":1}", msg.Fields)
			}
		}
	}
}

// A burst into a tiny UDP receive buffer: whatever the kernel drops is counted,
// so received + kernel drops + queue_full accounts for every datagram sent.
func TestUDPDropsAreCounted(t *testing.T) {
	cfg := testConfig(t)
	cfg.UDPBuffer = 4096
	cfg.TCP = ""
	m := MustRun(t, cfg)
	c, err := net.Dial("udp", m.udpAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const burst = 20000
	buf := make([]byte, 10)
	for n := 1; n <= burst; n++ {
		clear(buf)
		copy(buf, strconv.Itoa(n))
		c.Write(buf)
	}
	// The kernel reports its drop count with the next datagram read.
	time.Sleep(100 * time.Millisecond)
	c.Write([]byte("last"))
	waitFor(t, "the last datagram", 5*time.Second, func() bool {
		return m.Stats.Datagrams.Load()+m.Stats.UDPKernelDrops.Load() >= burst+1
	})
	MustClose(t, m)
	got, drops, full := m.Stats.Datagrams.Load(), m.Stats.UDPKernelDrops.Load(), m.Stats.QueueFull.Load()
	t.Logf("sent %d: read %d, kernel drops %d, queue full %d", burst+1, got, drops, full)
	if got+drops != burst+1 {
		t.Errorf("read %d + kernel drops %d != sent %d", got, drops, burst+1)
	}
	stored := int64(len(messages(t, cfg.DB, inlet.Query{})))
	if stored+full != got {
		t.Errorf("stored %d + queue_full %d != read %d", stored, full, got)
	}
	d := devices(t, cfg.DB)["127.0.0.1"]
	// Every counter lost below the highest one received shows as missing ("last"
	// is not a counter; what was lost above the highest cannot be known).
	if want := d.Run.High - d.Run.Low + 1 - (stored - 1); d.Missing != want || d.Duplicates != 0 || d.Resets != 0 {
		t.Errorf("device %+v: missing should be %d", d, want)
	}
}
