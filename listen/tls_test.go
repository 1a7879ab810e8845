package listen_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/listen"
	"github.com/inletdev/inlet/tlsserve"
)

// startTLS serves a TLS listener on a free loopback port over sink with a
// fresh self-signed certificate; it is closed when the test ends.
func startTLS(t testing.TB, sink listen.Sink, cfg listen.Config) (*listen.TCP, *inlet.Stats, *tls.Config) {
	t.Helper()
	ss, err := tlsserve.NewSelfSigned([]string{"localhost", "127.0.0.1"}, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(ss.CertPEM, ss.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tlsserve.New(pair)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Stats == nil {
		cfg.Stats = new(inlet.Stats)
	}
	ln, err := listen.ListenTLS("127.0.0.1:0", srv, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { ln.Serve(); close(served) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ln.Close(ctx)
		ln.WaitAcks(ctx)
		<-served
	})
	pool := x509.NewCertPool()
	pool.AddCert(ss.Cert)
	return ln, cfg.Stats, &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// dialTLS connects from src and completes the handshake.
func dialTLS(t testing.TB, src string, addr net.Addr, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c := tls.Client(dialFrom(t, src, addr), cfg)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake from %s: %v", src, err)
	}
	c.SetDeadline(time.Time{})
	return c
}

// The TLS port speaks the TCP port's protocols: plain lines stored under the
// sender's address, INLET/1 hello, OK and ACKs; a TLS 1.1 client is refused
// and counted; handshakes and plain text on the TLS port are counted.
func TestTLSListener(t *testing.T) {
	sink := newFakeSink()
	log := new(syncLog)
	ln, stats, ccfg := startTLS(t, sink, listen.Config{Logger: slog.New(slog.NewTextHandler(log, nil))})

	// Plain lines, the connection closed after them.
	c := dialTLS(t, "127.0.0.21", ln.Addr(), ccfg)
	if _, err := c.Write([]byte("temp=21.5\nhum=40\ntail")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, "the plain lines", 5*time.Second, func() bool { return len(sink.payloads("127.0.0.21")) == 3 })
	if got, want := sink.payloads("127.0.0.21"), []string{"temp=21.5", "hum=40", "tail"}; !slices.Equal(got, want) {
		t.Errorf("queued %q, want %q", got, want)
	}

	// Acknowledged mode: hello, OK, 200 readings in two windows, every ACK.
	a := dialTLS(t, "127.0.0.22", ln.Addr(), ccfg)
	r := bufio.NewReader(a)
	fmt.Fprint(a, hello("tls-dev", "b1"))
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := r.ReadString('\n'); err != nil || l != "INLET/1 OK last=0\n" {
		t.Fatalf("hello answered %q, %v", l, err)
	}
	for w := range 2 {
		var b strings.Builder
		for i := w*100 + 1; i <= (w+1)*100; i++ {
			fmt.Fprintf(&b, "%d reading-%d\n", i, i)
		}
		if _, err := a.Write([]byte(b.String())); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("ACK %d\n", (w+1)*100)
		for {
			a.SetReadDeadline(time.Now().Add(10 * time.Second))
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v", want, err)
			}
			if !strings.HasPrefix(l, "ACK ") {
				t.Fatalf("answer %q", l)
			}
			if l == want {
				break
			}
		}
	}
	if got := sink.payloads("tls-dev"); len(got) != 200 || got[199] != "reading-200" {
		t.Errorf("acked device queued %d messages (last %q)", len(got), got[len(got)-1:])
	}
	a.Close()

	// TLS 1.1 only: refused, counted as old_version, logged.
	old := ccfg.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	oc := tls.Client(dialFrom(t, "127.0.0.23", ln.Addr()), old)
	oc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := oc.Handshake(); err == nil {
		t.Error("a TLS 1.1 client completed a handshake")
	}
	waitFor(t, "the old client counted", 5*time.Second, func() bool {
		return stats.TLSHandshakeFailures.Get(tlsserve.ReasonOldVersion) == 1
	})

	// Plain text on the TLS port: refused as not_tls, nothing stored.
	p := dialFrom(t, "127.0.0.24", ln.Addr())
	p.Write([]byte("temp=1\n"))
	waitFor(t, "plain text on the TLS port counted", 5*time.Second, func() bool {
		return stats.TLSHandshakeFailures.Get(tlsserve.ReasonNotTLS) == 1
	})
	if got := sink.payloads("127.0.0.24"); len(got) != 0 {
		t.Errorf("plain text on the TLS port stored: %q", got)
	}
	if n := stats.TLSHandshakes.Load(); n != 2 {
		t.Errorf("handshakes counted %d, want 2", n)
	}
	waitFor(t, "the refusal logged", 5*time.Second, func() bool {
		return strings.Contains(log.String(), "tls: handshake failed") && strings.Contains(log.String(), "reason=old_version")
	})
	if n := stats.MessagesTCP.Load(); n != 203 {
		t.Errorf("messages counted %d, want 203", n)
	}
}

// A client that connects and never sends a ClientHello does not delay another
// device's handshake: the handshake runs on the connection's own goroutine,
// never on the accept loop. Several silent clients hold their handshakes open
// for the whole test; a device behind them is served at once (well within the
// 20 s handshake timeout the silent ones would otherwise cost each).
func TestTLSSilentClientDoesNotBlockAccept(t *testing.T) {
	sink := newFakeSink()
	ln, stats, ccfg := startTLS(t, sink, listen.Config{})
	for i := range 3 {
		dialFrom(t, fmt.Sprintf("127.0.0.%d", 31+i), ln.Addr()) // silent: no ClientHello
	}
	waitFor(t, "the silent clients accepted", 5*time.Second, func() bool { return stats.ConnsAccepted.Load() == 3 })
	done := make(chan error, 1)
	go func() {
		c := tls.Client(dialFrom(t, "127.0.0.35", ln.Addr()), ccfg)
		c.SetDeadline(time.Now().Add(tlsserve.HandshakeTimeout / 2))
		if err := c.Handshake(); err != nil {
			done <- err
			return
		}
		c.Write([]byte("hello-behind-silent\n"))
		c.Close()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("a device behind silent clients: %v", err)
	}
	waitFor(t, "the device's line", 5*time.Second, func() bool { return len(sink.payloads("127.0.0.35")) == 1 })
	if f := stats.TLSHandshakeFailures.Get(tlsserve.ReasonTimeout); f != 0 {
		t.Errorf("%d handshakes timed out", f)
	}
}

// --allow: TCP, TLS and UDP take traffic from the allowed networks only;
// anything else is closed or dropped at once, unread (no handshake), counted
// and logged.
func TestAllow(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/30"), netip.MustParsePrefix("127.0.9.9/32")}
	var log syncLog
	cfg := listen.Config{Allow: allow, Logger: slog.New(slog.NewTextHandler(&log, nil))}

	t.Run("TCP", func(t *testing.T) {
		sink := newFakeSink()
		ln, stats := startTCP(t, sink, cfg)
		out := dialFrom(t, "127.0.0.9", ln.Addr())
		out.Write([]byte("from-outside\n"))
		out.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := out.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("a connection from outside --allow was not closed: read %d, %v", n, err)
		}
		sendOnce(t, "127.0.0.2", ln.Addr(), "from-inside\n")
		sendOnce(t, "127.0.9.9", ln.Addr(), "from-host\n")
		waitFor(t, "the allowed lines", 5*time.Second, func() bool { return sink.count() == 2 })
		if got := sink.payloads("127.0.0.9"); len(got) != 0 {
			t.Errorf("stored from outside --allow: %q", got)
		}
		if n := stats.NotAllowed.Load(); n != 1 {
			t.Errorf("not_allowed = %d, want 1", n)
		}
		if n := stats.ConnsAccepted.Load(); n != 2 {
			t.Errorf("connections accepted %d, want 2", n)
		}
	})

	t.Run("TLS", func(t *testing.T) {
		sink := newFakeSink()
		ln, stats, ccfg := startTLS(t, sink, cfg)
		c := tls.Client(dialFrom(t, "127.0.0.10", ln.Addr()), ccfg)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.Handshake(); err == nil {
			t.Error("a handshake from outside --allow completed")
		}
		waitFor(t, "the refusal counted", 5*time.Second, func() bool { return stats.NotAllowed.Load() == 1 })
		a := dialTLS(t, "127.0.0.3", ln.Addr(), ccfg)
		a.Write([]byte("tls-inside\n"))
		a.Close()
		waitFor(t, "the allowed line", 5*time.Second, func() bool { return len(sink.payloads("127.0.0.3")) == 1 })
		for _, r := range tlsserve.Reasons {
			if n := stats.TLSHandshakeFailures.Get(r); n != 0 {
				t.Errorf("a dropped connection ran a handshake: %s = %d", r, n)
			}
		}
	})

	t.Run("UDP", func(t *testing.T) {
		sink := newFakeSink()
		u, stats := startUDP(t, sink, cfg)
		for _, src := range []string{"127.0.0.11", "127.0.0.1"} {
			c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(u.Addr().String())))
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte("udp-from-" + src + "\n"))
			c.Close()
		}
		// One reader takes the datagrams in order: the allowed one is last.
		waitFor(t, "the allowed datagram", 5*time.Second, func() bool { return len(sink.payloads("127.0.0.1")) == 1 })
		if n := stats.NotAllowed.Load(); n != 1 {
			t.Errorf("not_allowed = %d, want 1", n)
		}
		if got := sink.payloads("127.0.0.11"); len(got) != 0 {
			t.Errorf("stored from outside --allow: %q", got)
		}
	})
	if l := log.String(); !strings.Contains(l, "from outside --allow dropped") || !strings.Contains(l, "remote=127.0.0.9:") {
		t.Errorf("refusals not logged:\n%s", l)
	}
}

// An idle TLS connection is closed after the listener's IdleTimeout (serve
// gives the TLS listener --tls-idle-timeout); a partial line is counted as
// truncated, as on the TCP port.
func TestTLSIdleTimeout(t *testing.T) {
	sink := newFakeSink()
	ln, stats, ccfg := startTLS(t, sink, listen.Config{IdleTimeout: 300 * time.Millisecond})
	c := dialTLS(t, "127.0.0.41", ln.Addr(), ccfg)
	c.Write([]byte("whole\npart"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if n, err := c.Read(make([]byte, 64)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle TLS connection not closed by the server: read %d, %v", n, err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("closed after %s, before the idle timeout", d)
	}
	waitFor(t, "the connection released", 5*time.Second, func() bool { return stats.ConnsOpen.Load() == 0 })
	if got := sink.payloads("127.0.0.41"); !slices.Equal(got, []string{"whole"}) {
		t.Errorf("queued %q, want only \"whole\"", got)
	}
	if n := stats.Truncated.Load(); n != 1 {
		t.Errorf("truncated = %d, want 1", n)
	}
}
