package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// A client that never speaks and one that sends a byte a second must not delay
// anyone else.
func TestSilentAndSlowClientsDoNotBlock(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	silent := dialFrom(t, "127.0.0.2", m.tcpAddr())
	defer silent.Close()
	slow := dialFrom(t, "127.0.0.3", m.tcpAddr())
	defer slow.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, b := range []byte("slow-but-steady\n") {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			slow.Write([]byte{b})
		}
	})
	defer func() { close(stop); wg.Wait() }()

	start := time.Now()
	for n := 1; n <= 20; n++ {
		if err := sendOnce("127.0.0.4", m.tcpAddr(), fmt.Sprintf("%d\r\n", n)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "20 messages from the fast device", 2*time.Second, func() bool { return m.Stats.Committed.Load() >= 20 })
	t.Logf("20 connect-per-message sends stored in %s beside a silent and a slow client", time.Since(start))
	if open := m.Stats.ConnsOpen.Load(); open < 2 {
		t.Errorf("silent and slow connections should still be open, have %d", open)
	}
}

// Framing over real sockets: a line split across writes with pauses, CRLF and LF
// endings, a tail at FIN, a partial tail lost to a reset.
func TestFramingOverTCP(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)

	c := dialFrom(t, "127.0.0.5", m.tcpAddr())
	c.(*net.TCPConn).SetNoDelay(true)
	for _, part := range []string{"te", "mp=2", "1.", "5\r", "\n", "lf-only\n", "crlf\r\n", "\r\n", "\n", "tail-at-fin"} {
		if _, err := io.WriteString(c, part); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Close()

	r := dialFrom(t, "127.0.0.6", m.tcpAddr())
	io.WriteString(r, "whole\npartial-then-reset")
	waitFor(t, "the whole line", 5*time.Second, func() bool { return m.Stats.MessagesTCP.Load() >= 5 })
	r.(*net.TCPConn).SetLinger(0) // close with RST
	r.Close()
	waitFor(t, "the truncated tail to be counted", 5*time.Second, func() bool { return m.Stats.Truncated.Load() == 1 })
	MustClose(t, m)

	got := payloads(messages(t, cfg.DB, inlet.Query{Device: "127.0.0.5"}))
	want := []string{"temp=21.5", "lf-only", "crlf", "tail-at-fin"}
	if !slices.Equal(got, want) {
		t.Errorf("stored %q, want %q", got, want)
	}
	got = payloads(messages(t, cfg.DB, inlet.Query{Device: "127.0.0.6"}))
	if !slices.Equal(got, []string{"whole"}) {
		t.Errorf("after reset stored %q, want only \"whole\"", got)
	}
	ms := messages(t, cfg.DB, inlet.Query{Device: "127.0.0.5", Limit: 1})
	if len(ms) != 1 || string(ms[0].Fields) != `{"temp":21.5}` {
		t.Errorf("fields of temp=21.5: %+v", ms)
	}
}

// The tutorial's UDP sketch sends a 10-byte buffer: the counter, NUL padded.
func TestUDPTutorialDatagram(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	c, err := net.Dial("udp", m.udpAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range []string{"5\x00\x00\x00\x00\x00\x00\x00\x00\x00", "6\x00\x00\x00\x00\x00\x00\x00\x00\x00", "a=1\nb=2\r\n", "\x00\x00\x00"} {
		if _, err := c.Write([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	waitCommitted(t, m, 4)
	MustClose(t, m)
	ms := messages(t, cfg.DB, inlet.Query{})
	if got := payloads(ms); !slices.Equal(got, []string{"5", "6", "a=1", "b=2"}) {
		t.Fatalf("stored %q", got)
	}
	for _, msg := range ms {
		if msg.Transport != inlet.UDP || msg.Device != "127.0.0.1" {
			t.Errorf("row %+v", msg)
		}
	}
	if d := devices(t, cfg.DB)["127.0.0.1"]; d.Messages != 4 || d.Gaps != 0 {
		t.Errorf("device %+v", d)
	}
	if n := m.Stats.Datagrams.Load(); n != 4 {
		t.Errorf("datagrams counted %d, want 4", n)
	}
}

// Bad input: over-long lines, binary garbage, 10 MB without a newline, and a flood
// of connections over --max-conns. The server stays up, the other devices are
// served, and every rejection is counted by its reason.
func TestBadInput(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxMessage = 64
	cfg.MaxConns = 30
	cfg.MaxConnsPerIP = 20
	m := MustRun(t, cfg)

	// Two lines over the limit around a good one; then garbage bytes.
	c := dialFrom(t, "127.0.0.7", m.tcpAddr())
	long := strings.Repeat("x", 65)
	garbage := []byte{0xff, 0xfe, 0x00, 0x01, 0x1b, '[', '3', '1', 'm', 0x80}
	io.WriteString(c, long+"\r\nok-1\n"+strings.Repeat("y", 500)+"\n")
	c.Write(append(garbage, '\n'))
	io.WriteString(c, strings.Repeat("z", 64)+"\r\n") // exactly the limit: stored
	c.Close()

	// 10 MB without a newline, then a good line on the same connection.
	big := dialFrom(t, "127.0.0.8", m.tcpAddr())
	chunk := bytes.Repeat([]byte{'A'}, 64<<10)
	for range 160 {
		if _, err := big.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	io.WriteString(big, "\nafter-the-flood\n")
	big.Close()

	// A connection flood from one address: 20 are allowed per IP, 30 in all.
	waitFor(t, "the earlier connections to be read to their end", 20*time.Second, func() bool {
		return m.Stats.ConnsOpen.Load() == 0
	})
	var flood []net.Conn
	for range 25 {
		flood = append(flood, dialFrom(t, "127.0.0.9", m.tcpAddr()))
	}
	for range 15 {
		flood = append(flood, dialFrom(t, "127.0.0.10", m.tcpAddr()))
	}
	// Refused connections are closed by the server: reading them ends at once.
	var refusedSeen atomic.Int64
	var readers sync.WaitGroup
	for _, fc := range flood {
		readers.Go(func() {
			fc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, err := fc.Read(make([]byte, 1)); err == io.EOF {
				refusedSeen.Add(1)
			}
		})
	}
	readers.Wait()
	waitFor(t, "refusals counted", 5*time.Second, func() bool { return m.Stats.Refused.Load() >= 10 })
	if n := refusedSeen.Load(); n != 10 {
		t.Errorf("clients saw %d refused connections, want 10 (5 over per-IP, 5 over total)", n)
	}
	// Another device is still served while the flood holds every slot... after
	// one slot frees.
	flood[0].Close()
	waitFor(t, "a free slot", 5*time.Second, func() bool { return m.Stats.ConnsOpen.Load() < int64(cfg.MaxConns) })
	if err := sendOnce("127.0.0.11", m.tcpAddr(), "still-served\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other device's message", 5*time.Second, func() bool {
		return m.Stats.Committed.Load() >= 5
	})
	for _, fc := range flood {
		fc.Close()
	}
	MustClose(t, m)

	if got := payloads(messages(t, cfg.DB, inlet.Query{Device: "127.0.0.7"})); len(got) != 3 || got[0] != "ok-1" ||
		got[1] != string(garbage) || got[2] != strings.Repeat("z", 64) {
		t.Errorf("127.0.0.7 stored %q", got)
	}
	if got := payloads(messages(t, cfg.DB, inlet.Query{Device: "127.0.0.8"})); !slices.Equal(got, []string{"after-the-flood"}) {
		t.Errorf("127.0.0.8 stored %q", got)
	}
	if got := payloads(messages(t, cfg.DB, inlet.Query{Device: "127.0.0.11"})); !slices.Equal(got, []string{"still-served"}) {
		t.Errorf("127.0.0.11 stored %q", got)
	}
	if n := m.Stats.TooLong.Load(); n != 3 {
		t.Errorf("too_long = %d, want 3", n)
	}
	if n := m.Stats.Refused.Load(); n != 10 {
		t.Errorf("refused = %d, want 10", n)
	}
}

// An idle connection is closed after --idle-timeout; its partial tail is counted
// as truncated and not stored.
func TestIdleTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.IdleTimeout = 300 * time.Millisecond
	m := MustRun(t, cfg)
	c := dialFrom(t, "127.0.0.12", m.tcpAddr())
	defer c.Close()
	io.WriteString(c, "complete\nhalf")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after idle: %v, want EOF (server closed)", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %s", d)
	}
	waitFor(t, "truncated", 2*time.Second, func() bool { return m.Stats.Truncated.Load() == 1 })
	MustClose(t, m)
	if got := payloads(messages(t, cfg.DB, inlet.Query{})); !slices.Equal(got, []string{"complete"}) {
		t.Errorf("stored %q", got)
	}
}

// Drops in the tail of a burst are counted even when no datagram follows to
// carry the kernel's counter (it is also read from /proc/net/udp).
func TestUDPDropsCountedWithoutALaterDatagram(t *testing.T) {
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
	for range burst {
		c.Write([]byte("7\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	}
	waitFor(t, "every datagram read or counted as dropped", 5*time.Second, func() bool {
		return m.Stats.Datagrams.Load()+m.Stats.UDPKernelDrops.Load() == burst
	})
	if m.Stats.UDPKernelDrops.Load() == 0 {
		t.Skip("the kernel dropped nothing: the buffer was not small enough here")
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

// IPv6: the device is its IPv6 address, the remote is [addr]:port.
func TestIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback")
	}
	ln.Close()
	cfg := testConfig(t)
	cfg.TCP, cfg.UDP = "[::1]:0", "[::1]:0"
	m := MustRun(t, cfg)
	if err := sendOnce("", m.tcpAddr(), "7\r\n"); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", m.udpAddr())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("8\x00\x00"))
	c.Close()
	waitCommitted(t, m, 2)
	MustClose(t, m)
	for _, msg := range messages(t, cfg.DB, inlet.Query{}) {
		if msg.Device != "::1" || !strings.HasPrefix(msg.Remote.String(), "[::1]:") {
			t.Errorf("row %+v", msg)
		}
	}
	if d := devices(t, cfg.DB)["::1"]; d.Messages != 2 || d.Gaps != 0 {
		t.Errorf("device %+v", d)
	}
}

// On a dual-stack listener (the default ":3000") an IPv4 device is stored as
// IPv4, in both device and remote.
func TestDualStackStoresIPv4(t *testing.T) {
	cfg := testConfig(t)
	cfg.TCP, cfg.UDP = "[::]:0", ""
	m := MustRun(t, cfg)
	_, port, _ := net.SplitHostPort(m.tcpAddr())
	if err := sendOnce("127.0.0.1", net.JoinHostPort("127.0.0.1", port), "9\n"); err != nil {
		t.Skipf("no dual-stack listener here: %v", err)
	}
	waitCommitted(t, m, 1)
	MustClose(t, m)
	ms := messages(t, cfg.DB, inlet.Query{})
	if len(ms) != 1 || ms[0].Device != "127.0.0.1" || !strings.HasPrefix(ms[0].Remote.String(), "127.0.0.1:") {
		t.Fatalf("rows %+v", ms)
	}
}
