package listen_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/listen"
)

// Framing over real sockets: a line split across writes with pauses, CRLF and
// LF endings, empty lines skipped, a tail at FIN kept, a partial tail lost to a
// reset counted as truncated.
func TestTCPFraming(t *testing.T) {
	sink := newFakeSink()
	ln, stats := startTCP(t, sink, listen.Config{})

	c := dialFrom(t, "127.0.0.5", ln.Addr())
	c.(*net.TCPConn).SetNoDelay(true)
	for _, part := range []string{"te", "mp=2", "1.", "5\r", "\n", "lf-only\n", "crlf\r\n", "\r\n", "\n", "tail-at-fin"} {
		if _, err := io.WriteString(c, part); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // separate segments, read separately or not
	}
	c.Close()

	r := dialFrom(t, "127.0.0.6", ln.Addr())
	io.WriteString(r, "whole\npartial-then-reset")
	waitFor(t, "the whole line", 5*time.Second, func() bool { return len(sink.payloads("127.0.0.6")) == 1 })
	r.(*net.TCPConn).SetLinger(0) // close with RST
	r.Close()
	waitFor(t, "the truncated tail to be counted", 5*time.Second, func() bool { return stats.Truncated.Load() == 1 })
	waitFor(t, "the first device's lines", 5*time.Second, func() bool { return len(sink.payloads("127.0.0.5")) == 4 })

	if got, want := sink.payloads("127.0.0.5"), []string{"temp=21.5", "lf-only", "crlf", "tail-at-fin"}; !slices.Equal(got, want) {
		t.Errorf("queued %q, want %q", got, want)
	}
	if got := sink.payloads("127.0.0.6"); !slices.Equal(got, []string{"whole"}) {
		t.Errorf("after reset queued %q, want only \"whole\"", got)
	}
	sink.mu.Lock()
	m := sink.msgs[0]
	sink.mu.Unlock()
	if m.Transport != inlet.TCP || m.Remote.Addr().String() != m.Device || m.Remote.Port() == 0 || m.Seq != 0 || m.Boot != "" || m.Ack != nil {
		t.Errorf("plain message %+v", m)
	}
	if n := stats.MessagesTCP.Load(); n != 5 {
		t.Errorf("messages counted %d, want 5", n)
	}
}

// Over-long lines are discarded up to the next newline and counted; the
// connection stays open and a line of exactly the limit is kept. Bytes that are
// not text are kept as they came.
func TestTCPTooLong(t *testing.T) {
	sink := newFakeSink()
	var logs syncLog
	ln, stats := startTCP(t, sink, listen.Config{MaxMessage: 64, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	c := dialFrom(t, "127.0.0.7", ln.Addr())
	garbage := []byte{0xff, 0xfe, 0x00, 0x01, 0x1b, '[', '3', '1', 'm', 0x80}
	io.WriteString(c, strings.Repeat("x", 65)+"\r\nok-1\n"+strings.Repeat("y", 500)+"\n")
	c.Write(append(garbage, '\n'))
	io.WriteString(c, strings.Repeat("z", 64)+"\r\n")
	// 1 MB without a newline, then a good line on the same connection.
	chunk := bytes.Repeat([]byte{'A'}, 64<<10)
	for range 16 {
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	io.WriteString(c, "\nafter-the-flood\n")
	c.Close()

	waitFor(t, "the connection read to its end", 10*time.Second, func() bool { return stats.ConnsOpen.Load() == 0 })
	want := []string{"ok-1", string(garbage), strings.Repeat("z", 64), "after-the-flood"}
	if got := sink.payloads("127.0.0.7"); !slices.Equal(got, want) {
		t.Errorf("queued %q, want %q", got, want)
	}
	if n := stats.TooLong.Load(); n != 3 {
		t.Errorf("too_long = %d, want 3", n)
	}
	// Counted and logged (rate-limited: one line here, naming the device).
	if l := logs.String(); strings.Count(l, "longer than --max-message") != 1 || !strings.Contains(l, "device=127.0.0.7") {
		t.Errorf("log of the over-long lines:\n%s", l)
	}
}

// syncLog is a log destination safe for the listener's goroutines.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Over --max-conns or --max-conns-per-ip a connection is accepted and closed at
// once, counted as refused; the connections already open are unaffected, and a
// freed slot serves the next device.
func TestTCPConnectionLimits(t *testing.T) {
	sink := newFakeSink()
	ln, stats := startTCP(t, sink, listen.Config{MaxConns: 30, MaxConnsPerIP: 20})

	var flood []net.Conn
	for range 25 {
		flood = append(flood, dialFrom(t, "127.0.0.9", ln.Addr()))
	}
	for range 15 {
		flood = append(flood, dialFrom(t, "127.0.0.10", ln.Addr()))
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
	if n := refusedSeen.Load(); n != 10 {
		t.Errorf("clients saw %d refused connections, want 10 (5 over per-IP, 5 over total)", n)
	}
	if n := stats.Refused.Load(); n != 10 {
		t.Errorf("refused = %d, want 10", n)
	}
	if n := stats.ConnsOpen.Load(); n != 30 {
		t.Errorf("open = %d, want 30", n)
	}
	// The open ones still work.
	var open net.Conn
	for _, fc := range flood {
		fc.SetReadDeadline(time.Time{})
		if _, err := io.WriteString(fc, "still-open\n"); err == nil {
			open = fc
			break
		}
	}
	if open == nil {
		t.Fatal("no connection left open")
	}
	waitFor(t, "a line on an open connection", 5*time.Second, func() bool { return sink.count() == 1 })
	// A freed slot serves another device.
	open.Close()
	waitFor(t, "a free slot", 5*time.Second, func() bool { return stats.ConnsOpen.Load() < 30 })
	sendOnce(t, "127.0.0.11", ln.Addr(), "still-served\n")
	waitFor(t, "the other device's line", 5*time.Second, func() bool {
		return slices.Equal(sink.payloads("127.0.0.11"), []string{"still-served"})
	})
}

// A connection that sends nothing for the idle timeout is closed; its partial
// tail is counted as truncated, not queued. A silent client delays nobody.
func TestTCPIdleTimeout(t *testing.T) {
	sink := newFakeSink()
	ln, stats := startTCP(t, sink, listen.Config{IdleTimeout: 300 * time.Millisecond})
	c := dialFrom(t, "127.0.0.12", ln.Addr())
	io.WriteString(c, "complete\nhalf")
	silent := dialFrom(t, "127.0.0.13", ln.Addr())
	sendOnce(t, "127.0.0.14", ln.Addr(), "beside-the-silent\n")
	waitFor(t, "the other device's line", 5*time.Second, func() bool { return len(sink.payloads("127.0.0.14")) == 1 })

	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after idle: %v, want EOF (server closed)", err)
	}
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent connection: %v, want EOF (server closed)", err)
	}
	waitFor(t, "truncated", 5*time.Second, func() bool { return stats.Truncated.Load() == 1 })
	if got := sink.payloads("127.0.0.12"); !slices.Equal(got, []string{"complete"}) {
		t.Errorf("queued %q", got)
	}
}

// Acknowledged mode's refusals and rejections: a malformed or over-long hello is
// answered "ERR bad-hello", a wrong or missing token "ERR unauthorized", and the
// connection closed; a message without a seq gets "ERR 0 bad-seq" and an
// over-long one "ERR <seq> too-long", and the connection goes on.
func TestTCPAckedErrors(t *testing.T) {
	sink := newFakeSink()
	sink.durable["d1/b1"] = 0
	ln, stats := startTCP(t, sink, listen.Config{MaxMessage: 64, Token: "s3cret"})

	for _, c := range []struct{ name, hello, want string }{
		{"bad hello", "INLET/1 id=bad!id boot=1\n", "INLET/1 ERR bad-hello"},
		{"over-long hello", "INLET/1 id=" + strings.Repeat("x", 80) + " boot=1 token=s3cret\n", "INLET/1 ERR bad-hello"},
		{"wrong token", "INLET/1 id=d1 boot=b1 token=guess\n", "INLET/1 ERR unauthorized"},
		{"no token", "INLET/1 id=d1 boot=b1\n", "INLET/1 ERR unauthorized"},
		{"longer token", "INLET/1 id=d1 boot=b1 token=s3cret0\n", "INLET/1 ERR unauthorized"},
	} {
		a := dialAck(t, "127.0.0.20", ln.Addr())
		a.send(t, c.hello, "1 after\n")
		if got := a.line(t, 5*time.Second); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if _, err := a.r.ReadString('\n'); err != io.EOF {
			t.Errorf("%s: connection not closed after the refusal: %v", c.name, err)
		}
	}
	if n := stats.HelloErrors.Load(); n != 5 {
		t.Errorf("hello errors %d, want 5", n)
	}

	a := dialAck(t, "127.0.0.21", ln.Addr())
	a.send(t, "INLET/1 id=d1 boot=b1 token=s3cret\n")
	if got := a.line(t, 5*time.Second); got != "INLET/1 OK last=0" {
		t.Fatalf("hello: %q", got)
	}
	a.send(t, "no-seq here\n", "5 "+strings.Repeat("x", 80)+"\n", "6 fine\n")
	for _, want := range []string{"ERR 0 bad-seq", "ERR 5 too-long", "ACK 6"} {
		if got := a.line(t, 5*time.Second); got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
	if n := stats.SeqErrors.Load(); n != 1 {
		t.Errorf("seq errors %d, want 1", n)
	}
	if got := sink.payloads("d1"); !slices.Equal(got, []string{"fine"}) {
		t.Errorf("queued %q, want only \"fine\"", got)
	}
	sink.mu.Lock()
	m := sink.msgs[len(sink.msgs)-1]
	sink.mu.Unlock()
	if m.Device != "d1" || m.Boot != "b1" || m.Seq != 6 || m.Ack == nil {
		t.Errorf("acknowledged message %+v", m)
	}
}

// A hello read once shutdown has begun is answered "ERR busy".
func TestTCPAckedBusyAtShutdown(t *testing.T) {
	sink := newFakeSink()
	ln, stats := startTCP(t, sink, listen.Config{DrainTimeout: 5 * time.Second})
	a := dialAck(t, "127.0.0.22", ln.Addr())
	waitFor(t, "the connection accepted", 5*time.Second, func() bool { return stats.ConnsAccepted.Load() == 1 })
	closed := make(chan error, 1)
	go func() { closed <- ln.Close(context.Background()) }()
	waitFor(t, "shutdown to begin", 5*time.Second, ln.Closing)
	a.send(t, hello("d", "b"))
	if got := a.line(t, 5*time.Second); got != "INLET/1 ERR busy" {
		t.Errorf("hello during shutdown: %q, want INLET/1 ERR busy", got)
	}
	if err := <-closed; err != nil {
		t.Errorf("close: %v", err)
	}
}

// Close lets every connection read what its client had already sent, queues
// it, and closes the connections; a connection still sending is cut at the
// drain deadline with what it sent before it queued.
func TestTCPCloseDrains(t *testing.T) {
	sink := newFakeSink()
	ln, stats := startTCP(t, sink, listen.Config{DrainTimeout: 300 * time.Millisecond})
	quiet := dialFrom(t, "127.0.0.30", ln.Addr())
	io.WriteString(quiet, "sent-before-close\npartial")
	talker := dialFrom(t, "127.0.0.31", ln.Addr())
	waitFor(t, "both accepted", 5*time.Second, func() bool { return stats.ConnsAccepted.Load() == 2 })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := io.WriteString(talker, "chatter\n"); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	waitFor(t, "the talker's lines", 5*time.Second, func() bool { return len(sink.payloads("127.0.0.31")) > 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := ln.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if took > 5*time.Second {
		t.Errorf("close took %s with a 300 ms drain", took)
	}
	if got := sink.payloads("127.0.0.30"); !slices.Equal(got, []string{"sent-before-close"}) {
		t.Errorf("quiet connection queued %q", got)
	}
	waitFor(t, "every connection released", 5*time.Second, func() bool { return stats.ConnsOpen.Load() == 0 })
	quiet.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := quiet.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("quiet connection after close: %v, want EOF", err)
	}
	if n := stats.Truncated.Load(); n < 1 {
		t.Errorf("truncated = %d: the partial tail cut at shutdown is not counted", n)
	}
}

// Close with lines held for room gives them up when its context ends: it
// returns, and never hangs on a sink that stays full.
func TestTCPCloseGivesUpOnAFullSink(t *testing.T) {
	sink := newFakeSink()
	sink.setFull(true)
	ln, _ := startTCP(t, sink, listen.Config{DrainTimeout: 100 * time.Millisecond})
	c := dialFrom(t, "127.0.0.40", ln.Addr())
	io.WriteString(c, "held\n")
	waitFor(t, "the line held", 5*time.Second, func() bool { return ln.Holding() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := ln.Close(ctx); err == nil {
		t.Error("close with a full sink reported everything queued")
	}
	if n := sink.count(); n != 0 {
		t.Errorf("%d queued into a full sink", n)
	}
}

// The ack writer releases its connection once: an Acked that comes after the
// connection was released (a resend acknowledged late, say) starts no writer
// and releases nothing again.
func TestTCPAckReleaseOnce(t *testing.T) {
	sink := newFakeSink()
	sink.durable["d/b"] = 0
	ln, stats := startTCP(t, sink, listen.Config{})
	a := dialAck(t, "127.0.0.50", ln.Addr())
	a.send(t, hello("d", "b"), "1 one\n")
	for _, want := range []string{"INLET/1 OK last=0", "ACK 1"} {
		if got := a.line(t, 5*time.Second); got != want {
			t.Fatalf("%q, want %q", got, want)
		}
	}
	a.c.Close()
	waitFor(t, "the connection released", 5*time.Second, func() bool { return stats.ConnsOpen.Load() == 0 })
	sink.mu.Lock()
	acker := sink.lateAcks[0].Ack
	sink.mu.Unlock()
	waitFor(t, "the ack writer to end", 5*time.Second, func() bool {
		running, released := listen.AckState(acker)
		return !running && released
	})

	acker.Acked(1) // late
	if running, released := listen.AckState(acker); running || !released {
		t.Fatalf("after a late Acked: writer running %v, released %v; want no writer", running, released)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ln.WaitAcks(ctx); err != nil {
		t.Fatal(err)
	}
	if n := stats.ConnsOpen.Load(); n != 0 {
		t.Fatalf("open connections %d after a late Acked, want 0", n)
	}
}

// IPv6: the device is its IPv6 address, the remote [addr]:port. On a dual-stack
// listener (the default ":3000") an IPv4 device is IPv4 in both.
func TestTCPDeviceAddresses(t *testing.T) {
	if probe, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback")
	} else {
		probe.Close()
	}
	sink := newFakeSink()
	v6, _ := startTCPAt(t, "[::1]:0", sink, listen.Config{})
	sendOnce(t, "::1", v6.Addr(), "7\r\n")
	waitFor(t, "the IPv6 line", 5*time.Second, func() bool { return len(sink.payloads("::1")) == 1 })

	dual, _ := startTCPAt(t, "[::]:0", sink, listen.Config{})
	v4 := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: dual.Addr().(*net.TCPAddr).Port}
	c, err := net.DialTimeout("tcp", v4.String(), 5*time.Second)
	if err != nil {
		t.Skipf("no dual-stack listener here: %v", err)
	}
	c.Write([]byte("9\n"))
	c.Close()
	waitFor(t, "the IPv4 line", 5*time.Second, func() bool { return len(sink.payloads("127.0.0.1")) == 1 })

	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, m := range sink.msgs {
		switch m.Device {
		case "::1":
			if !strings.HasPrefix(m.Remote.String(), "[::1]:") {
				t.Errorf("IPv6 remote %s", m.Remote)
			}
		case "127.0.0.1":
			if !strings.HasPrefix(m.Remote.String(), "127.0.0.1:") {
				t.Errorf("IPv4 on dual stack: remote %s", m.Remote)
			}
		default:
			t.Errorf("device %q", m.Device)
		}
	}
}

// A listener's backlog is known (on Linux): the connections its accept loop
// has not taken yet.
func TestBacklog(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n, ok := listen.Backlog(l)
	if !ok {
		t.Skip("the backlog is not known on this system")
	}
	if n != 0 {
		t.Fatalf("backlog %d before any connection", n)
	}
	for range 3 {
		dialFrom(t, "127.0.0.60", l.Addr())
	}
	waitFor(t, "3 connections in the backlog", 5*time.Second, func() bool { n, _ := listen.Backlog(l); return n == 3 })
}

// Lines a client sent before the shutdown are queued even when the drain
// deadline passes before the reader gets to them.
func TestTCPCloseTakesWhatWasSent(t *testing.T) {
	for i := range 20 {
		sink := newFakeSink()
		ln, stats := startTCP(t, sink, listen.Config{DrainTimeout: time.Nanosecond})
		c := dialFrom(t, "127.0.0.61", ln.Addr())
		waitFor(t, "the connection accepted", 5*time.Second, func() bool { return stats.ConnsAccepted.Load() == 1 })
		io.WriteString(c, "sent\n")
		// Sent means in the server's socket, not in flight (loopback may
		// deliver after the write returns).
		if _, ok := listen.Delivered(c); !ok {
			t.Skip("cannot tell here when bytes have reached the server")
		}
		waitFor(t, "the line in the server's socket", 5*time.Second, func() bool { d, _ := listen.Delivered(c); return d })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := ln.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if got := sink.payloads("127.0.0.61"); !slices.Equal(got, []string{"sent"}) {
			t.Fatalf("round %d: queued %q, want the line sent before Close; client %v msgs %d trunc %d", i, got, c.LocalAddr(), stats.MessagesTCP.Load(), stats.Truncated.Load())
		}
	}
}

// An acknowledged connection closed cleanly in the middle of a line does not
// store (and so never acknowledges) the cut-off line: its full resend must not
// be taken for a duplicate of a truncated payload. Plain mode keeps such a tail.
func TestTCPAckedTailAtFINDropped(t *testing.T) {
	sink := newFakeSink()
	sink.durable["fin/b1"] = 0
	ln, stats := startTCP(t, sink, listen.Config{})
	a := dialAck(t, "127.0.0.22", ln.Addr())
	a.send(t, hello("fin", "b1"), "1 r=1\n2 r=2-but-cut-he")
	if got := a.line(t, 5*time.Second); got != "INLET/1 OK last=0" {
		t.Fatalf("hello: %q", got)
	}
	a.c.(*net.TCPConn).CloseWrite()
	if got := a.line(t, 5*time.Second); got != "ACK 1" {
		t.Fatalf("after the FIN: %q, want ACK 1 (and nothing for the cut-off 2)", got)
	}
	if _, err := a.r.ReadString('\n'); err != io.EOF {
		t.Errorf("more after ACK 1: %v", err)
	}
	if got := sink.payloads("fin"); !slices.Equal(got, []string{"r=1"}) {
		t.Errorf("queued %q, want only the whole line r=1", got)
	}
	if n := stats.Truncated.Load(); n != 1 {
		t.Errorf("truncated %d, want 1", n)
	}
}
