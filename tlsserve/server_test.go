package tlsserve_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet/tlsserve"
	"github.com/inletdev/inlet/wire"
)

// testCert makes a self-signed certificate for localhost and 127.0.0.1
// (rsaBits 0: ECDSA P-256) and writes it to dir.
func testCert(t testing.TB, dir string, rsaBits int) (certFile, keyFile string, ss tlsserve.SelfSigned) {
	t.Helper()
	ss, err := tlsserve.NewSelfSigned([]string{"localhost", "127.0.0.1"}, rsaBits, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "inlet.crt"), filepath.Join(dir, "inlet.key")
	if err := os.WriteFile(certFile, ss.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, ss.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, ss
}

// inletServer is a small INLET/1-speaking server behind tlsserve: it answers a
// hello with OK last=0 and every "<seq> <payload>" line with ACK <seq>, acks
// coalesced in a buffer flushed when the input runs dry (as listen's ack
// writer does), so one write often holds many acks. It stores nothing.
type inletServer struct {
	tls      *tlsserve.Server
	ln       net.Listener
	wg       sync.WaitGroup
	maxWrite atomic.Int64 // the largest single Write to the TLS conn
	acked    atomic.Int64
	// tee, when set, wraps each accepted TCP connection before the
	// handshake (to capture what the server sends); done is called with the
	// wrapped conn once the handshake is over.
	tee       func(net.Conn) net.Conn
	handshook func(net.Conn)
	raw       bool // write to the *tls.Conn directly, bypassing the record split (to check that the record test can fail)
	// holdAcks, when set, holds acks until a multiple of holdAcks lines is
	// acknowledged (the client's window), so writes are that many ACKs long.
	holdAcks int64
}

func startInlet(t testing.TB, ts *tlsserve.Server, opt func(*inletServer)) *inletServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &inletServer{tls: ts, ln: ln}
	if opt != nil {
		opt(s)
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *inletServer) addr() string { return s.ln.Addr().String() }

func (s *inletServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		// The accept loop only starts the connection's goroutine: the
		// handshake runs there.
		s.wg.Add(1)
		go s.serve(c)
	}
}

// countingWriter records the largest single Write.
type countingWriter struct {
	w   interface{ Write([]byte) (int, error) }
	max *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	for {
		m := c.max.Load()
		if int64(len(p)) <= m || c.max.CompareAndSwap(m, int64(len(p))) {
			break
		}
	}
	return c.w.Write(p)
}

func (s *inletServer) serve(c net.Conn) {
	defer s.wg.Done()
	if s.tee != nil {
		c = s.tee(c)
	}
	conn, err := s.tls.Handshake(context.Background(), c, 10*time.Second)
	if err != nil {
		return
	}
	defer conn.Close()
	if s.handshook != nil {
		s.handshook(c)
	}
	var out interface{ Write([]byte) (int, error) } = conn
	if s.raw {
		out = conn.Conn
	}
	r := bufio.NewReader(conn)
	w := bufio.NewWriterSize(countingWriter{out, &s.maxWrite}, 4096)
	hello := false
	var buf []byte
	for {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		buf = buf[:0]
		if !hello {
			if _, err := wire.ParseHello(line); err != nil {
				w.Write(wire.AppendHelloErr(buf, "bad-hello"))
				w.Flush()
				return
			}
			hello = true
			buf = wire.AppendOK(buf, 0)
		} else {
			seq, _, err := wire.ParseMessage(line)
			if err != nil {
				buf = wire.AppendErr(buf, 0, "bad-seq")
			} else {
				buf = wire.AppendAck(buf, seq)
				s.acked.Add(1)
			}
		}
		w.Write(buf)
		if r.Buffered() == 0 && (s.holdAcks == 0 || s.acked.Load()%s.holdAcks == 0) {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// goSession runs one INLET/1 session with a Go TLS client: hello, n readings
// pipelined in windows of window, every ACK read. It returns the client's view
// of the connection.
func goSession(t testing.TB, addr string, cfg *tls.Config, n, window int) tls.ConnectionState {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(c)
	if _, err := fmt.Fprintf(c, "INLET/1 id=go-test boot=%x\n", time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "INLET/1 OK last=0\n" {
		t.Fatalf("hello answer %q, %v", line, err)
	}
	payload := bytes.Repeat([]byte("t=21.5;h=40"), 3)
	var batch []byte
	for seq := 1; seq <= n; {
		batch = batch[:0]
		first := seq
		for ; seq <= n && seq-first < window; seq++ {
			batch = fmt.Appendf(batch, "%d %s\n", seq, payload)
		}
		if _, err := c.Write(batch); err != nil {
			t.Fatal(err)
		}
		for want := first; want < seq; want++ {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("after ACK %d: %v", want-1, err)
			}
			if line != fmt.Sprintf("ACK %d\n", want) {
				t.Fatalf("got %q, want ACK %d", line, want)
			}
		}
	}
	return c.ConnectionState()
}

func clientConfig(ss tlsserve.SelfSigned) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ss.Cert)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// TestGoClients runs sessions with crypto/tls clients over every suite the
// server offers, TLS 1.2 and 1.3, with both certificate types.
func TestGoClients(t *testing.T) {
	for _, bits := range []int{0, 2048} {
		_, _, ss := testCert(t, t.TempDir(), bits)
		ts, err := tlsserve.New(mustPair(t, ss))
		if err != nil {
			t.Fatal(err)
		}
		srv := startInlet(t, ts, nil)
		suites := []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
		if bits != 0 {
			suites = []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}
		}
		for _, suite := range suites {
			cfg := clientConfig(ss)
			cfg.MaxVersion = tls.VersionTLS12
			cfg.CipherSuites = []uint16{suite}
			st := goSession(t, srv.addr(), cfg, 100, 32)
			if st.CipherSuite != suite || st.Version != tls.VersionTLS12 {
				t.Errorf("negotiated %s %s, want %s TLS 1.2", tls.CipherSuiteName(st.CipherSuite), tls.VersionName(st.Version), tls.CipherSuiteName(suite))
			}
		}
		st := goSession(t, srv.addr(), clientConfig(ss), 100, 32)
		if st.Version != tls.VersionTLS13 {
			t.Errorf("default client negotiated %s, want TLS 1.3", tls.VersionName(st.Version))
		}
		// A CBC-only client finds no common suite: the server offers AEADs only.
		cfg := clientConfig(ss)
		cfg.MaxVersion = tls.VersionTLS12
		cfg.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}
		if c, err := tls.Dial("tcp", srv.addr(), cfg); err == nil {
			c.Close()
			t.Error("a CBC-only client was served")
		}
		waitFor(t, func() bool { return ts.Failures()[tlsserve.ReasonHandshake] == 1 }, "the CBC-only client counted under handshake")
		if got := ts.Handshakes(); got != 4 {
			t.Errorf("Handshakes() = %d, want 4", got)
		}
	}
}

func mustPair(t testing.TB, ss tlsserve.SelfSigned) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(ss.CertPEM, ss.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOldVersionRefused: a TLS 1.0/1.1-only client is refused with a
// protocol_version alert and counted as old_version; other failures are
// counted under their own reasons, not as old_version.
func TestOldVersionRefused(t *testing.T) {
	_, _, ss := testCert(t, t.TempDir(), 0)
	ts, err := tlsserve.New(mustPair(t, ss))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var errs []error
	// A listener that records Handshake's errors.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				conn, err := ts.Handshake(context.Background(), c, 500*time.Millisecond)
				if err == nil {
					conn.Close()
					return
				}
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}()
		}
	}()

	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		cfg := clientConfig(ss)
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, v
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err == nil {
			c.Close()
			t.Fatalf("a client with MaxVersion %s was served", tls.VersionName(v))
		}
		if !errors.Is(err, errAlert(70)) && !bytes.Contains([]byte(err.Error()), []byte("protocol version")) {
			t.Errorf("the client saw %v, want a protocol_version alert", err)
		}
	}
	// Plain text on the TLS port, a client that hangs up, one that never speaks.
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Write([]byte("INLET/1 id=x boot=1\n"))
		c.Close()
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Write([]byte{22, 3, 1})
		c.Close()
	}
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(errs) == 5 }, "five failed handshakes")
	want := map[string]uint64{tlsserve.ReasonOldVersion: 2, tlsserve.ReasonNotTLS: 1, tlsserve.ReasonClosed: 1, tlsserve.ReasonTimeout: 1, tlsserve.ReasonHandshake: 0}
	got := ts.Failures()
	for r, n := range want {
		if got[r] != n {
			t.Errorf("Failures()[%s] = %d, want %d (all: %v)", r, got[r], n, got)
		}
	}
	old := 0
	for _, err := range errs {
		if errors.Is(err, tlsserve.ErrOldVersion) {
			old++
		}
		if (tlsserve.Reason(err) == tlsserve.ReasonOldVersion) != errors.Is(err, tlsserve.ErrOldVersion) {
			t.Errorf("Reason(%v) = %s", err, tlsserve.Reason(err))
		}
	}
	if old != 2 {
		t.Errorf("%d errors are ErrOldVersion, want 2: %v", old, errs)
	}
}

// errAlert is the client's error for a received alert.
func errAlert(code uint8) error { return tls.AlertError(code) }

// TestReload: after Reload, new handshakes get the new certificate, and a
// connection made before keeps working with the old one.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, ss1 := testCert(t, dir, 0)
	ts, err := tlsserve.Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := startInlet(t, ts, nil)

	pool := x509.NewCertPool()
	pool.AddCert(ss1.Cert)
	old, err := tls.Dial("tcp", srv.addr(), &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	r := bufio.NewReader(old)
	fmt.Fprintf(old, "INLET/1 id=old boot=1\n1 a\n")
	for _, want := range []string{"INLET/1 OK last=0\n", "ACK 1\n"} {
		if line, err := r.ReadString('\n'); err != nil || line != want {
			t.Fatalf("got %q, %v, want %q", line, err, want)
		}
	}

	// Replace the files; a failed reload (bad key file) keeps the old one.
	_, _, ss2 := testCert(t, dir, 0)
	os.WriteFile(keyFile, []byte("garbage"), 0o600)
	if _, err := ts.Reload(); err == nil {
		t.Fatal("Reload with a bad key file succeeded")
	}
	if got := ts.Info().SHA1; got != tlsserve.Fingerprint(ss1.Cert.Raw) {
		t.Fatalf("after a failed reload the fingerprint is %s, want the old one", got)
	}
	os.WriteFile(keyFile, ss2.KeyPEM, 0o600)
	info, err := ts.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if info.SHA1 != tlsserve.Fingerprint(ss2.Cert.Raw) {
		t.Errorf("Reload reported %s, want the new fingerprint", info.SHA1)
	}

	newc, err := tls.Dial("tcp", srv.addr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	got := newc.ConnectionState().PeerCertificates[0]
	newc.Close()
	if !got.Equal(ss2.Cert) {
		t.Error("a handshake after Reload did not get the new certificate")
	}
	// The old connection is untouched: still its certificate, still served.
	if !old.ConnectionState().PeerCertificates[0].Equal(ss1.Cert) {
		t.Error("the old connection's certificate changed")
	}
	fmt.Fprintf(old, "2 b\n")
	if line, err := r.ReadString('\n'); err != nil || line != "ACK 2\n" {
		t.Fatalf("old connection after reload: %q, %v", line, err)
	}
}

func TestSelfSignedInfo(t *testing.T) {
	for _, tc := range []struct {
		bits int
		key  string
	}{{0, "ECDSA P-256"}, {2048, "RSA-2048"}} {
		_, _, ss := testCert(t, t.TempDir(), tc.bits)
		ts, err := tlsserve.New(mustPair(t, ss))
		if err != nil {
			t.Fatal(err)
		}
		info := ts.Info()
		if info.KeyType != tc.key || !info.FitsSmallRecords || len(info.DNSNames) != 1 || info.DNSNames[0] != "localhost" ||
			len(info.IPs) != 1 || info.IPs[0] != "127.0.0.1" || len(info.SHA1) != 59 {
			t.Errorf("Info() = %+v", info)
		}
		if err := ss.Cert.VerifyHostname("127.0.0.1"); err != nil {
			t.Error(err)
		}
	}
}

// TestLongChainInfo: a chain whose Certificate message cannot fit one 2 KiB
// record is reported (the server still serves it, for devices with default
// buffers); a key type the devices cannot use is refused.
func TestLongChainInfo(t *testing.T) {
	_, _, leaf := testCert(t, t.TempDir(), 2048)
	_, _, inter := testCert(t, t.TempDir(), 2048)
	pair := mustPair(t, leaf)
	if info, err := tlsserve.New(pair); err != nil || !info.Info().FitsSmallRecords {
		t.Fatalf("one RSA-2048 certificate: %v, %+v", err, info.Info())
	}
	// Two RSA-2048 certificates (about 1,700 bytes) still fit; three do not.
	pair.Certificate = append(pair.Certificate, inter.Cert.Raw)
	ts, err := tlsserve.New(pair)
	if err != nil {
		t.Fatal(err)
	}
	if info := ts.Info(); !info.FitsSmallRecords || info.ChainBytes != len(leaf.Cert.Raw)+len(inter.Cert.Raw) {
		t.Errorf("two RSA-2048 certificates: %+v", info)
	}
	pair.Certificate = append(pair.Certificate, inter.Cert.Raw)
	if ts, err = tlsserve.New(pair); err != nil {
		t.Fatal(err)
	}
	if info := ts.Info(); info.FitsSmallRecords {
		t.Errorf("three RSA-2048 certificates (%d bytes) reported to fit 2 KiB records", info.ChainBytes)
	}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tlsserve.New(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}); err == nil {
		t.Error("an Ed25519 certificate was accepted; BearSSL and mbedTLS 2 cannot verify it")
	}
}
