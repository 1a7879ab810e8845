package tlsserve_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/inletdev/inlet/tlsserve"
)

// tee records every byte the server writes to the TCP connection.
type tee struct {
	net.Conn
	mu        sync.Mutex
	sent      []byte
	handshake int // len(sent) when the server's handshake returned
}

func (c *tee) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.sent = append(c.sent, p...)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

type record struct {
	typ byte
	len int // payload bytes after the 5-byte header
}

// parseRecords splits a server's byte stream into TLS records.
func parseRecords(t *testing.T, b []byte) []record {
	t.Helper()
	var recs []record
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("%d stray bytes after the last record", len(b))
		}
		n := int(b[3])<<8 | int(b[4])
		if len(b) < 5+n {
			t.Fatalf("record of %d bytes cut short (%d left)", n, len(b)-5)
		}
		recs = append(recs, record{b[0], n})
		b = b[5+n:]
	}
	return recs
}

// aeadOverhead is the ciphertext bytes an encrypted record adds to its
// plaintext: TLS 1.3, one content-type byte and a 16-byte tag (Go adds no
// padding); TLS 1.2 AES-GCM, an 8-byte explicit nonce and the tag; TLS 1.2
// ChaCha20-Poly1305, the tag alone. The server offers no other suites.
func aeadOverhead(t *testing.T, st tls.ConnectionState) int {
	switch {
	case st.Version == tls.VersionTLS13:
		return 1 + 16
	case st.CipherSuite == tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		st.CipherSuite == tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return 16
	case st.Version == tls.VersionTLS12:
		return 8 + 16
	}
	t.Fatalf("unexpected %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	return 0
}

// TestRecordSizes captures what the server sends during whole sessions
// (handshake, OK, 1,000 pipelined ACKs) and checks every record: during the
// handshake, with a one-certificate chain, at most 2 KiB of record payload
// (ciphertext, overhead included); after it, at most 512 bytes of plaintext,
// i.e. a record payload of at most 512 + the suite's AEAD overhead.
func TestRecordSizes(t *testing.T) {
	for _, bits := range []int{0, 2048} {
		_, _, ss := testCert(t, t.TempDir(), bits)
		ts, err := tlsserve.New(mustPair(t, ss))
		if err != nil {
			t.Fatal(err)
		}
		versions := []struct {
			name  string
			max   uint16
			suite uint16
		}{
			{"TLS1.3", tls.VersionTLS13, 0},
			{"TLS1.2-ChaCha20", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
			{"TLS1.2-AES128GCM", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		}
		for _, v := range versions {
			name := v.name + "-ECDSA"
			if bits != 0 {
				name = v.name + "-RSA"
				switch v.suite {
				case tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
					v.suite = tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
				case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:
					v.suite = tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
				}
			}
			t.Run(name, func(t *testing.T) {
				var mu sync.Mutex
				var tees []*tee
				srv := startInlet(t, ts, func(s *inletServer) {
					s.tee = func(c net.Conn) net.Conn {
						tc := &tee{Conn: c}
						mu.Lock()
						tees = append(tees, tc)
						mu.Unlock()
						return tc
					}
					s.handshook = func(c net.Conn) {
						tc := c.(*tee)
						tc.mu.Lock()
						tc.handshake = len(tc.sent)
						tc.mu.Unlock()
					}
				})
				cfg := clientConfig(ss)
				cfg.MaxVersion = v.max
				if v.suite != 0 {
					cfg.CipherSuites = []uint16{v.suite}
				}
				st := goSession(t, srv.addr(), cfg, 1000, 200)
				checkRecords(t, srv, st, func() []*tee { mu.Lock(); defer mu.Unlock(); return tees })
			})
		}
	}
}

func checkRecords(t *testing.T, srv *inletServer, st tls.ConnectionState, tees func() []*tee) {
	t.Helper()
	waitFor(t, func() bool { return len(tees()) == 1 }, "the connection")
	tc := tees()[0]
	// The client has read every ACK, so everything the server wrote is in.
	tc.mu.Lock()
	sent, hs := append([]byte(nil), tc.sent...), tc.handshake
	tc.mu.Unlock()
	if hs == 0 {
		t.Fatal("the handshake end was not marked")
	}
	over := aeadOverhead(t, st)
	during, after := parseRecords(t, sent[:hs]), parseRecords(t, sent[hs:])
	maxHS, maxApp := 0, 0
	var sizes []string
	for _, r := range during {
		sizes = append(sizes, fmt.Sprintf("%d:%d", r.typ, r.len))
		maxHS = max(maxHS, r.len)
		if r.len > tlsserve.MaxHandshakeRecord {
			t.Errorf("handshake record type %d of %d bytes > %d", r.typ, r.len, tlsserve.MaxHandshakeRecord)
		}
	}
	for _, r := range after {
		maxApp = max(maxApp, r.len)
		if r.len-over > tlsserve.MaxRecordPlaintext {
			t.Errorf("record type %d after the handshake: %d bytes = %d of plaintext > %d", r.typ, r.len, r.len-over, tlsserve.MaxRecordPlaintext)
		}
	}
	// The bound must have been tested: the server wrote more than 512 bytes
	// at once (coalesced ACKs), so without the split a record would exceed it.
	if srv.maxWrite.Load() <= tlsserve.MaxRecordPlaintext {
		t.Errorf("the largest write was %d bytes: the session never needed a split", srv.maxWrite.Load())
	}
	t.Logf("%s %s: %d handshake records (type:bytes %s; %d bytes in all), %d records after (largest %d = %d of plaintext), largest write %d",
		tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), len(during), strings.Join(sizes, " "), hs, len(after), maxApp, maxApp-over, srv.maxWrite.Load())
}

// TestRecordSizesWithoutSplit checks that TestRecordSizes can fail: the same
// session written straight to the *tls.Conn sends records above 512 bytes.
func TestRecordSizesWithoutSplit(t *testing.T) {
	_, _, ss := testCert(t, t.TempDir(), 0)
	ts, err := tlsserve.New(mustPair(t, ss))
	if err != nil {
		t.Fatal(err)
	}
	var tc *tee
	done := make(chan struct{})
	srv := startInlet(t, ts, func(s *inletServer) {
		s.raw = true
		s.tee = func(c net.Conn) net.Conn { tc = &tee{Conn: c}; return tc }
		s.handshook = func(c net.Conn) {
			tc.mu.Lock()
			tc.handshake = len(tc.sent)
			tc.mu.Unlock()
			close(done)
		}
	})
	st := goSession(t, srv.addr(), clientConfig(ss), 1000, 200)
	<-done
	tc.mu.Lock()
	recs := parseRecords(t, tc.sent[tc.handshake:])
	tc.mu.Unlock()
	biggest := 0
	for _, r := range recs {
		biggest = max(biggest, r.len-aeadOverhead(t, st))
	}
	if biggest <= tlsserve.MaxRecordPlaintext {
		t.Fatalf("without the split the largest record held %d bytes of plaintext: the record test could not fail", biggest)
	}
}
