package listen_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/listen"
)

// loopbackAliases skips a test that needs source addresses other than
// 127.0.0.1: only Linux routes all of 127/8 to loopback.
func loopbackAliases(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs 127.0.0.0/8 as loopback sources (Linux)")
	}
}

// trickle is the slowloris client of issue 10: connections from one address
// that each send one byte, never a newline, every interval, reconnecting when
// the server closes them, until ctx ends.
func trickle(ctx context.Context, wg *sync.WaitGroup, src string, addr net.Addr, conns int, every time.Duration) {
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	for range conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr.String())
				if err != nil {
					sleepCtx(ctx, every)
					continue
				}
				for ctx.Err() == nil {
					if _, err := c.Write([]byte{'x'}); err != nil {
						break
					}
					sleepCtx(ctx, every)
				}
				c.Close()
			}
		})
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// The slowloris lock-out of issue 10, at a tenth of the scale and the same
// shape: 4 addresses try 12 connections each and hold every one the limits
// allow (--max-conns 40, --max-conns-per-ip 10), each trickling a byte without a newline and
// reconnecting when closed. A tutorial device (connect, one line, close) from
// another address is still served: at the limit the server closes the
// connection longest without progress instead of refusing the newcomer. The
// line timeouts are left at their defaults, far longer than the test, so only
// the eviction can let the device in; before it, every try was refused.
func TestSlowlorisDoesNotLockOutADevice(t *testing.T) {
	loopbackAliases(t)
	sink := newFakeSink()
	ln, stats := startTCP(t, sink, listen.Config{MaxConns: 40, MaxConnsPerIP: 10})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i := range 4 {
		trickle(ctx, &wg, fmt.Sprintf("127.0.3.%d", i+1), ln.Addr(), 12, 200*time.Millisecond)
	}
	waitFor(t, "the attack to fill --max-conns", 10*time.Second, func() bool { return stats.ConnsOpen.Load() == 40 })
	waitFor(t, "more connections than the limits allow", 10*time.Second, func() bool { return stats.Refused.Load() > 0 || stats.ConnsClosed.Get(listen.ClosedEvicted) > 0 })

	// The device tries as the tutorial sketch does, once every 200 ms.
	start := time.Now()
	for try := 1; ; try++ {
		if time.Since(start) > 15*time.Second {
			t.Fatalf("a tutorial device was not served in %d tries over 15 s while 4 addresses trickle: refused=%d evicted=%d",
				try-1, stats.Refused.Load(), stats.ConnsClosed.Get(listen.ClosedEvicted))
		}
		c, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.ParseIP("127.0.3.100")}, ln.Addr().(*net.TCPAddr))
		if err == nil {
			fmt.Fprintf(c, "reading-%d\n", try)
			c.Close()
		}
		deadline := time.Now().Add(200 * time.Millisecond)
		for time.Now().Before(deadline) && len(sink.payloads("127.0.3.100")) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		if len(sink.payloads("127.0.3.100")) > 0 {
			t.Logf("served at try %d after %v", try, time.Since(start).Round(time.Millisecond))
			break
		}
	}
	if stats.ConnsClosed.Get(listen.ClosedEvicted) == 0 {
		t.Error("no eviction counted")
	}
	if n := stats.ConnsOpen.Load(); n > 40 {
		t.Errorf("%d connections open, over --max-conns 40", n)
	}
}

// At the per-address limit a newcomer from that address replaces the
// connection of that address longest without a line; a quiet device that has
// sent lines is not the one chosen while a silent one is there.
func TestEvictionPrefersConnectionsWithoutLines(t *testing.T) {
	sink := newFakeSink()
	ln, stats := startTCP(t, sink, listen.Config{MaxConnsPerIP: 2})
	quiet := dialFrom(t, "127.0.3.20", ln.Addr())
	io.WriteString(quiet, "hello-from-quiet\n")
	waitFor(t, "the quiet device's line", 5*time.Second, func() bool { return sink.count() == 1 })
	silent := dialFrom(t, "127.0.3.20", ln.Addr())
	waitFor(t, "two connections", 5*time.Second, func() bool { return stats.ConnsOpen.Load() == 2 })
	time.Sleep(1100 * time.Millisecond) // past the eviction grace of both
	sendOnce(t, "127.0.3.20", ln.Addr(), "newcomer\n")
	waitFor(t, "the newcomer's line", 5*time.Second, func() bool { return sink.count() == 2 })
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("the silent connection was not closed: %v", err)
	}
	if _, err := io.WriteString(quiet, "still-here\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the quiet device's second line", 5*time.Second, func() bool { return sink.count() == 3 })
	if n := stats.ConnsClosed.Get(listen.ClosedEvicted); n != 1 {
		t.Errorf("evicted = %d, want 1", n)
	}
	if n := stats.Refused.Load(); n != 0 {
		t.Errorf("refused = %d, want 0", n)
	}
}

// waitClosed waits for the count of connections closed for reason to be
// want, and fails with every count if it does not get there.
func waitClosed(t *testing.T, stats *inlet.Stats, reason string, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for stats.ConnsClosed.Get(reason) != want {
		if time.Now().After(deadline) {
			var counts []string
			stats.ConnsClosed.Range(func(r string, n int64) { counts = append(counts, fmt.Sprintf("%s=%d", r, n)) })
			t.Fatalf("connections closed for %s: %d, want %d (all: %v)", reason, stats.ConnsClosed.Get(reason), want, counts)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// expectClosed waits up to d for the server to close c, and fails if it does
// not.
func expectClosed(t *testing.T, what string, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if err != nil && isTimeout(err) {
		t.Fatalf("%s: still open after %v", what, d)
	}
}

// A line must end within --line-timeout of its first byte: a client sending a
// byte every 50 ms, each well inside the idle timeout, is closed, its partial
// line counted as truncated. A device sending whole lines keeps its connection
// far longer than the line timeout.
func TestLineTimeout(t *testing.T) {
	sink := newFakeSink()
	ln, stats := startTCP(t, sink, listen.Config{Limits: listen.Limits{LineTimeout: 300 * time.Millisecond}, IdleTimeout: 10 * time.Second})
	slow := dialFrom(t, "127.0.3.30", ln.Addr())
	good := dialFrom(t, "127.0.3.31", ln.Addr())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			fmt.Fprintf(good, "%d\n", i)
			slow.Write([]byte{'7'})
		}
	})
	expectClosed(t, "a connection trickling one line", slow, 5*time.Second)
	// The good device has outlived the line timeout several times over.
	n0 := len(sink.payloads("127.0.3.31"))
	waitFor(t, "more lines of the good device", 5*time.Second, func() bool { return len(sink.payloads("127.0.3.31")) > n0+10 })
	close(stop)
	wg.Wait()
	if _, err := io.WriteString(good, "still-open\n"); err != nil {
		t.Errorf("the device sending lines was closed: %v", err)
	}
	waitClosed(t, stats, listen.ClosedLine, 1)
	waitFor(t, "the partial line counted truncated", 5*time.Second, func() bool { return stats.Truncated.Load() == 1 })
	if got := sink.payloads("127.0.3.30"); len(got) != 0 {
		t.Errorf("the trickled line was queued: %q", got)
	}
}

// A connection must complete its first line within --first-line-timeout, TLS
// handshake included: a silent one, one sending only empty lines, and a TLS
// client that never finishes its handshake are closed long before the idle
// timeout. After its lines, a connection sending only empty lines is closed at
// the idle timeout counted from its last line.
func TestFirstLineTimeout(t *testing.T) {
	cfg := listen.Config{Limits: listen.Limits{FirstLineTimeout: 400 * time.Millisecond}, IdleTimeout: 20 * time.Second}
	sink := newFakeSink()
	ln, stats := startTCP(t, sink, cfg)
	silent := dialFrom(t, "127.0.3.40", ln.Addr())
	empty := dialFrom(t, "127.0.3.41", ln.Addr())
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			empty.Write([]byte("\r\n"))
		}
	}()
	expectClosed(t, "a silent connection", silent, 5*time.Second)
	expectClosed(t, "a connection sending empty lines", empty, 5*time.Second)
	waitClosed(t, stats, listen.ClosedFirstLine, 2)

	// The TLS port: the handshake counts, bounded here well below
	// tlsserve.HandshakeTimeout (20 s).
	tln, tstats, _ := startTLS(t, newFakeSink(), cfg)
	stalled := dialFrom(t, "127.0.3.42", tln.Addr())
	stalled.Write([]byte{0x16, 0x03, 0x01}) // the start of a ClientHello's record, then nothing
	expectClosed(t, "a TLS client stalled in its handshake", stalled, 5*time.Second)
	waitFor(t, "the handshake timeout counted", 5*time.Second, func() bool { return tstats.TLSHandshakeFailures.Get("timeout") == 1 })

	// Idle since the last line, however many empty lines follow.
	iln, istats := startTCP(t, sink, listen.Config{IdleTimeout: 400 * time.Millisecond})
	blank := dialFrom(t, "127.0.3.43", iln.Addr())
	io.WriteString(blank, "one-line\n")
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			blank.Write([]byte("\n"))
		}
	}()
	expectClosed(t, "a connection sending empty lines after a line", blank, 5*time.Second)
	waitClosed(t, istats, listen.ClosedIdle, 1)
}

// --max-conn-rate: past its burst, an address's new connections are closed at
// once, unread, and counted; another address is served as usual.
func TestConnRate(t *testing.T) {
	sink := newFakeSink()
	ln, stats := startTCP(t, sink, listen.Config{Limits: listen.Limits{ConnRate: 2, ConnBurst: 5}})
	for i := range 20 {
		sendOnce(t, "127.0.3.50", ln.Addr(), fmt.Sprintf("%d\n", i))
	}
	sendOnce(t, "127.0.3.51", ln.Addr(), "other\n")
	waitFor(t, "the other address's line", 5*time.Second, func() bool { return len(sink.payloads("127.0.3.51")) == 1 })
	waitFor(t, "20 connections accounted", 5*time.Second, func() bool {
		return stats.ConnsAccepted.Load()+stats.ConnsClosed.Get(listen.ClosedRateLimited) == 21
	})
	limited := stats.ConnsClosed.Get(listen.ClosedRateLimited)
	// 5 in the burst, plus at most a few refilled at 2/s while the test ran.
	if limited < 10 || limited > 15 {
		t.Errorf("rate_limited = %d of 20 connections, want 15 (burst 5), give or take what refilled", limited)
	}
	waitFor(t, "the admitted lines", 5*time.Second, func() bool { return len(sink.payloads("127.0.3.50")) == int(20-limited) })
}

// --max-msg-rate in plain mode: a device's lines past its burst are dropped and
// counted as rate_limited; another device is unaffected.
func TestMsgRatePlain(t *testing.T) {
	sink := newFakeSink()
	lim := listen.Limits{MsgRate: 1, MsgBurst: 5}
	ln, stats := startTCP(t, sink, listen.Config{Limits: lim})
	c := dialFrom(t, "127.0.3.60", ln.Addr())
	io.WriteString(c, strings.Repeat("x\n", 20))
	c.Close()
	sendOnce(t, "127.0.3.61", ln.Addr(), "other\n")
	waitFor(t, "every line accounted", 5*time.Second, func() bool {
		return len(sink.payloads("127.0.3.60"))+int(stats.RateLimited.Load()) == 20 && len(sink.payloads("127.0.3.61")) == 1
	})
	if n := len(sink.payloads("127.0.3.60")); n < 5 || n > 6 {
		t.Errorf("queued %d of 20 lines, want 5 (the burst), or 6 with one refilled", n)
	}

	usink := newFakeSink()
	u, ustats := startUDP(t, usink, listen.Config{Limits: lim})
	uc, err := net.DialUDP("udp", nil, u.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	for range 10 {
		uc.Write([]byte("1\n2\n"))
	}
	waitFor(t, "every datagram line accounted", 5*time.Second, func() bool {
		return usink.count()+int(ustats.RateLimited.Load()) == 20
	})
	if n := usink.count(); n < 5 || n > 6 {
		t.Errorf("UDP: queued %d of 20 lines, want 5 or 6", n)
	}
}

// --max-msg-rate in acknowledged mode: the messages within the burst are
// acknowledged, none after the first one over it (an ACK is cumulative), and
// the connection closes; the device's next hello is refused "busy" until its
// bucket has refilled, and is then answered with what was stored.
func TestMsgRateAcked(t *testing.T) {
	sink := newFakeSink()
	ln, stats := startTCP(t, sink, listen.Config{Limits: listen.Limits{MsgRate: 0.5, MsgBurst: 5}})
	a := dialAck(t, "127.0.3.70", ln.Addr())
	var b strings.Builder
	b.WriteString(hello("limited", "b1"))
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&b, "%d m%d\n", i, i)
	}
	a.send(t, b.String())
	if got := a.line(t, 5*time.Second); got != "INLET/1 OK last=0" {
		t.Fatalf("hello answered %q", got)
	}
	var last int
	for {
		a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		s, err := a.r.ReadString('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read: %v (after ACK %d)", err, last)
		}
		if _, err := fmt.Sscanf(s, "ACK %d\n", &last); err != nil {
			t.Fatalf("answer %q, want only ACKs then the close", s)
		}
	}
	if last != 5 {
		t.Fatalf("acknowledged up to %d, want 5 (the burst)", last)
	}
	if got := len(sink.payloads("limited")); got != last {
		t.Errorf("stored %d, acknowledged up to %d", got, last)
	}
	if n := stats.RateLimited.Load(); n < 1 {
		t.Errorf("rate_limited = %d", n)
	}
	// Straight back: refused busy while the bucket is empty.
	a2 := dialAck(t, "127.0.3.70", ln.Addr())
	a2.send(t, hello("limited", "b1"))
	if got := a2.line(t, 5*time.Second); got != "INLET/1 ERR busy" {
		t.Fatalf("hello at once after the limit answered %q, want INLET/1 ERR busy", got)
	}
	// Later, welcome again. The fake store answers last=0; the point is the OK.
	time.Sleep(2100 * time.Millisecond) // one message refilled at 0.5/s
	a3 := dialAck(t, "127.0.3.70", ln.Addr())
	a3.send(t, hello("limited", "b1"), fmt.Sprintf("%d again\n", last+1))
	if got := a3.line(t, 5*time.Second); !strings.HasPrefix(got, "INLET/1 OK") {
		t.Fatalf("hello after a second answered %q", got)
	}
	if got, want := a3.line(t, 5*time.Second), fmt.Sprintf("ACK %d", last+1); got != want {
		t.Fatalf("answer %q, want %q", got, want)
	}
}

// Issue 10, item 4: a flood of bad hellos on the TCP port and of garbage
// handshakes on the TLS port, from several addresses, does not slow an
// acknowledged device: it gets all its ACKs, one message at a time, within a
// generous bound. The limits are the defaults.
func TestFloodDoesNotSlowOthers(t *testing.T) {
	loopbackAliases(t)
	d := listen.DefaultConfig()
	cfg := listen.Config{Limits: d.Limits}
	sink := newFakeSink()
	ln, stats := startTCP(t, sink, cfg)
	tln, tstats, _ := startTLS(t, newFakeSink(), cfg)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	flood := func(src string, addr net.Addr, garbage func() []byte) {
		dl := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := dl.DialContext(ctx, "tcp", addr.String())
				if err != nil {
					continue
				}
				c.Write(garbage())
				c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				io.Copy(io.Discard, c)
				c.Close()
			}
		})
	}
	badHello := func() []byte { return []byte("INLET/1 id=?? boot=!\n") }
	badHandshake := func() []byte {
		b := make([]byte, 300)
		rand.Read(b[5:])
		copy(b, []byte{0x16, 0x03, 0x01, 0x01, 0x27}) // a record header, then noise
		return b
	}
	for i := range 3 {
		flood(fmt.Sprintf("127.0.3.%d", 80+i), ln.Addr(), badHello)
		flood(fmt.Sprintf("127.0.3.%d", 90+i), tln.Addr(), badHandshake)
	}
	waitFor(t, "the flood to start", 10*time.Second, func() bool {
		return stats.HelloErrors.Load() > 50 && tstats.TLSHandshakeFailures.Get("handshake")+tstats.TLSHandshakeFailures.Get("not_tls") > 50
	})

	const n = 200
	start := time.Now()
	a := dialAck(t, "127.0.3.99", ln.Addr())
	a.send(t, hello("steady", "b1"))
	if got := a.line(t, 10*time.Second); got != "INLET/1 OK last=0" {
		t.Fatalf("hello answered %q", got)
	}
	r := a.r
	for i := 1; i <= n; i++ {
		fmt.Fprintf(a.c, "%d v=%d\n", i, i)
		a.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		s, err := r.ReadString('\n')
		if err != nil || s != fmt.Sprintf("ACK %d\n", i) {
			t.Fatalf("message %d of %d: answer %q, %v", i, n, s, err)
		}
	}
	took := time.Since(start)
	t.Logf("%d acknowledged messages in %v beside %d bad hellos and %d bad handshakes", n, took.Round(time.Millisecond),
		stats.HelloErrors.Load(), tstats.TLSHandshakeFailures.Get("handshake")+tstats.TLSHandshakeFailures.Get("not_tls"))
	if took > 30*time.Second {
		t.Errorf("%d acknowledged messages took %v beside the flood, want under 30 s", n, took)
	}
}
