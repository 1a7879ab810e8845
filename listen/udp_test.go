package listen_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/listen"
)

// startUDP serves a UDP listener on a free loopback port over sink.
func startUDP(t testing.TB, sink listen.Sink, cfg listen.Config) (*listen.UDP, *inlet.Stats) {
	t.Helper()
	if cfg.Stats == nil {
		cfg.Stats = new(inlet.Stats)
	}
	u, err := listen.ListenUDP("127.0.0.1:0", sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { u.Serve(); close(served) }()
	t.Cleanup(func() {
		u.Close(context.Background())
		<-served
		u.Release()
	})
	return u, cfg.Stats
}

// The tutorial's UDP sketch sends a 10-byte buffer: the counter, NUL padded. A
// datagram may carry several lines; one of only padding carries nothing.
func TestUDPDatagrams(t *testing.T) {
	sink := newFakeSink()
	u, stats := startUDP(t, sink, listen.Config{MaxMessage: 16})
	c, err := net.Dial("udp", u.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range []string{"5\x00\x00\x00\x00\x00\x00\x00\x00\x00", "6\x00\x00\x00\x00\x00\x00\x00\x00\x00", "a=1\nb=2\r\n",
		"\x00\x00\x00", strings.Repeat("x", 17) + "\nshort\n"} {
		if _, err := c.Write([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the datagrams read", 5*time.Second, func() bool { return stats.Datagrams.Load() == 5 })
	if got, want := sink.payloads("127.0.0.1"), []string{"5", "6", "a=1", "b=2", "short"}; !slices.Equal(got, want) {
		t.Fatalf("queued %q, want %q", got, want)
	}
	if n := stats.TooLong.Load(); n != 1 {
		t.Errorf("too_long = %d, want 1", n)
	}
	sink.mu.Lock()
	m := sink.msgs[0]
	sink.mu.Unlock()
	if m.Transport != inlet.UDP || m.Remote.Addr().String() != "127.0.0.1" {
		t.Errorf("message %+v", m)
	}
}

// A full queue drops a plain datagram and counts it; nothing waits.
func TestUDPQueueFull(t *testing.T) {
	sink := newFakeSink()
	sink.setFull(true)
	u, stats := startUDP(t, sink, listen.Config{})
	c, err := net.Dial("udp", u.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("1\n2\n"))
	waitFor(t, "the drop counted", 5*time.Second, func() bool { return stats.QueueFull.Load() == 2 })
	sink.setFull(false)
	c.Write([]byte("3\n"))
	waitFor(t, "the next datagram", 5*time.Second, func() bool { return sink.count() == 1 })
}

// An acknowledged datagram is answered "ACK <seq>" once queued and committed
// (the fake sink commits at once); a wrong token gets no answer, an over-long
// payload "ERR <seq> too-long".
func TestUDPAcked(t *testing.T) {
	sink := newFakeSink()
	u, stats := startUDP(t, sink, listen.Config{MaxMessage: 8, Token: "tok"})
	c, err := net.Dial("udp", u.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := func() string {
		t.Helper()
		buf := make([]byte, 64)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		return string(buf[:n])
	}
	c.Write([]byte("INLET/1 id=d boot=b seq=3 token=nope\nx"))
	c.Write([]byte("INLET/1 id=d boot=b seq=4 token=tok\n" + strings.Repeat("y", 9)))
	if got := read(); got != "ERR 4 too-long\n" {
		t.Fatalf("over-long: %q", got)
	}
	c.Write([]byte("INLET/1 id=d boot=b seq=5 token=tok\nt=21"))
	if got := read(); got != "ACK 5\n" {
		t.Fatalf("answer %q, want ACK 5", got)
	}
	if n := stats.HelloErrors.Load(); n != 1 {
		t.Errorf("hello errors %d, want 1 (the wrong token)", n)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.msgs) != 1 || sink.msgs[0].Device != "d" || sink.msgs[0].Boot != "b" || sink.msgs[0].Seq != 5 || string(sink.msgs[0].Payload) != "t=21" {
		t.Errorf("queued %+v", sink.msgs)
	}
}

// Drops in the tail of a burst into a tiny receive buffer are counted even when
// no datagram follows to carry the kernel's counter (it is also read from
// /proc/net/udp): read + kernel drops accounts for every datagram sent.
func TestUDPKernelDropsCounted(t *testing.T) {
	sink := newFakeSink()
	u, stats := startUDP(t, sink, listen.Config{UDPBuffer: 4096})
	c, err := net.Dial("udp", u.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const burst = 20000
	for range burst {
		c.Write([]byte("7\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	}
	waitFor(t, "every datagram read or counted as dropped", 10*time.Second, func() bool {
		return stats.Datagrams.Load()+stats.UDPKernelDrops.Load() == burst
	})
	if stats.UDPKernelDrops.Load() == 0 {
		t.Skip("the kernel dropped nothing: the buffer was not small enough here")
	}
}
