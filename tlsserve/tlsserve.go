// Package tlsserve owns inlet's server-side TLS (docs/protocol.md §4): the
// *tls.Config that the TLS stacks of the devices can speak (TLS 1.2 and 1.3,
// ECDHE with ChaCha20-Poly1305 or AES-GCM, ECDSA P-256 or RSA-2048
// certificates), the certificate and its reload on demand, the handshake run
// with a deadline on the connection's own goroutine, the classification of
// failed handshakes into countable reasons, and the small records an ESP8266
// can receive. It knows nothing of the protocols spoken inside TLS: listen
// reads and writes the Conn it returns as it does a TCP connection.
package tlsserve

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of the TLS listener.
const (
	// MaxRecordPlaintext is the most plaintext bytes inlet puts in one record
	// after the handshake, so a device with a 512-byte-overhead receive buffer
	// (BearSSL setBufferSizes) never gets a record it cannot hold.
	MaxRecordPlaintext = 512
	// MaxHandshakeRecord is the largest record payload inlet may send during a
	// handshake with a one-certificate chain (docs/protocol.md §4).
	MaxHandshakeRecord = 2048
	// HandshakeTimeout bounds a whole handshake. An ESP8266 takes one to a few
	// seconds for ECDHE and the signature check; BearSSL on the core gives up
	// after 15 s.
	HandshakeTimeout = 20 * time.Second
)

// ErrOldVersion is returned by Handshake for a client that offers only
// TLS 1.0 or 1.1 (or older); it is refused with a protocol_version alert.
var ErrOldVersion = errors.New("tlsserve: client offers only TLS 1.1 or older")

// Reasons a handshake fails, as counted by Server.Failures and returned by
// Reason. They are metric label values.
const (
	ReasonOldVersion = "old_version" // the client offers only TLS 1.0/1.1
	ReasonTimeout    = "timeout"     // the handshake did not finish within its deadline
	ReasonNotTLS     = "not_tls"     // the first bytes are not a TLS record (plain text on the TLS port)
	ReasonClosed     = "closed"      // the client closed or reset the connection mid-handshake
	ReasonHandshake  = "handshake"   // anything else: no common suite, a bad certificate (alert from the client), a bad message
)

// Reasons lists every reason, in a fixed order, for exporting counters.
var Reasons = []string{ReasonOldVersion, ReasonTimeout, ReasonNotTLS, ReasonClosed, ReasonHandshake}

// cipherSuites are the TLS 1.2 suites offered: ECDHE with an AEAD only, the
// ones BearSSL (ESP8266 Arduino core) and mbedTLS (ESP-IDF) put first. An AEAD
// keeps the per-record overhead fixed (at most 24 bytes), which the record
// bound relies on. TLS 1.3 suites are not configurable in Go and are all AEAD.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
}

// CertInfo describes the certificate in use, for the log line at start and at
// every reload.
type CertInfo struct {
	Subject  string
	DNSNames []string
	IPs      []string
	KeyType  string // "ECDSA P-256", "RSA-2048", ...
	NotAfter time.Time
	// SHA1 is the certificate's SHA-1 fingerprint, as BearSSL's setFingerprint
	// wants it ("AB:CD:...").
	SHA1 string
	// ChainBytes is the DER size of the whole chain sent. Above about 1,900
	// bytes the Certificate handshake message no longer fits one 2 KiB record
	// (Go sends each handshake message in one record), and a device with a
	// 2 KiB receive buffer cannot connect.
	ChainBytes int
	// FitsSmallRecords reports whether ChainBytes leaves the Certificate
	// message within MaxHandshakeRecord.
	FitsSmallRecords bool
}

// Server is the TLS side of one listener. Its methods are safe for concurrent
// use.
type Server struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
	config            *tls.Config
	failures          [5]atomic.Uint64 // by index in Reasons
	handshakes        atomic.Uint64
}

// Load reads the PEM certificate chain and key from certFile and keyFile and
// returns a Server using them. Reload reads the same files again.
func Load(certFile, keyFile string) (*Server, error) {
	s := &Server{certFile: certFile, keyFile: keyFile}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	s.init()
	return s, nil
}

// New returns a Server with a certificate already in memory (tests, or a
// certificate made at run time). Its Reload fails: there are no files.
func New(cert tls.Certificate) (*Server, error) {
	if _, err := inspect(&cert); err != nil {
		return nil, err
	}
	s := &Server{}
	s.cert.Store(&cert)
	s.init()
	return s, nil
}

func (s *Server) init() {
	s.config = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   tls.VersionTLS13,
		CipherSuites: cipherSuites,
		// The handshake reads the certificate at each new connection, so a
		// Reload reaches new handshakes at once and never touches the
		// connections already established.
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cert.Load(), nil
		},
		GetConfigForClient: markOldVersion,
	}
}

// markOldVersion notes on the connection that the client offers only old
// versions; the handshake then fails in crypto/tls with the protocol_version
// alert, and Handshake turns that failure into ErrOldVersion.
func markOldVersion(hi *tls.ClientHelloInfo) (*tls.Config, error) {
	modern := false
	for _, v := range hi.SupportedVersions {
		if v == tls.VersionTLS12 || v == tls.VersionTLS13 {
			modern = true
		}
	}
	if !modern {
		if c, ok := hi.Conn.(*rawConn); ok {
			c.oldVersion = true
		}
	}
	return nil, nil
}

// Config returns the server's *tls.Config. Use it as is (do not modify it): it
// takes the certificate from the Server at every handshake.
func (s *Server) Config() *tls.Config { return s.config }

// Reload reads the certificate and key files again and makes them the ones new
// handshakes use; established connections keep theirs. On error the certificate
// in use stays. The server calls it on SIGHUP.
func (s *Server) Reload() (CertInfo, error) {
	if s.certFile == "" {
		return CertInfo{}, errors.New("tlsserve: reload: no certificate files (certificate given in memory)")
	}
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return CertInfo{}, fmt.Errorf("tlsserve: load %s, %s: %w", s.certFile, s.keyFile, err)
	}
	info, err := inspect(&cert)
	if err != nil {
		return CertInfo{}, fmt.Errorf("tlsserve: %s: %w", s.certFile, err)
	}
	s.cert.Store(&cert)
	return info, nil
}

// Info describes the certificate new handshakes use.
func (s *Server) Info() CertInfo {
	info, _ := inspect(s.cert.Load())
	return info
}

// inspect checks that cert is one the devices can use and describes it.
func inspect(cert *tls.Certificate) (CertInfo, error) {
	if len(cert.Certificate) == 0 {
		return CertInfo{}, errors.New("no certificate")
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return CertInfo{}, fmt.Errorf("parse certificate: %w", err)
		}
		cert.Leaf = leaf
	}
	info := CertInfo{
		Subject:  leaf.Subject.String(),
		DNSNames: leaf.DNSNames,
		NotAfter: leaf.NotAfter,
		SHA1:     Fingerprint(leaf.Raw),
	}
	for _, ip := range leaf.IPAddresses {
		info.IPs = append(info.IPs, ip.String())
	}
	switch k := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		info.KeyType = "ECDSA " + k.Curve.Params().Name
		if k.Curve.Params().Name != "P-256" && k.Curve.Params().Name != "P-384" {
			return info, fmt.Errorf("ECDSA curve %s: the devices need P-256", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		info.KeyType = fmt.Sprintf("RSA-%d", k.N.BitLen())
		if k.N.BitLen() > 4096 {
			return info, fmt.Errorf("RSA key of %d bits: BearSSL takes at most 4096 (use RSA-2048 or ECDSA P-256)", k.N.BitLen())
		}
	default:
		return info, fmt.Errorf("public key type %T: the devices need ECDSA P-256 or RSA", leaf.PublicKey)
	}
	for _, der := range cert.Certificate {
		info.ChainBytes += len(der)
	}
	// Certificate message: 4 bytes of header, 3 of list length, 3 per
	// certificate, plus 1 context byte and 2 of extensions per certificate in
	// TLS 1.3; TLS 1.3 adds 17 bytes of record overhead.
	msg := 4 + 1 + 3 + info.ChainBytes + 5*len(cert.Certificate) + 17
	info.FitsSmallRecords = msg <= MaxHandshakeRecord
	return info, nil
}

// Fingerprint returns the SHA-1 of a DER certificate as colon-separated hex,
// the form BearSSL's setFingerprint accepts.
func Fingerprint(der []byte) string {
	sum := sha1.Sum(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// Failures returns the failed handshakes counted so far, by reason (every key
// of Reasons is present).
func (s *Server) Failures() map[string]uint64 {
	m := make(map[string]uint64, len(Reasons))
	for i, r := range Reasons {
		m[r] = s.failures[i].Load()
	}
	return m
}

// Handshakes returns the number of completed handshakes.
func (s *Server) Handshakes() uint64 { return s.handshakes.Load() }

// Handshake runs the server handshake on conn (a freshly accepted TCP
// connection) within timeout, on the calling goroutine: call it from the
// connection's own goroutine, never from an accept loop. On success it returns
// the connection to read and write in place of conn, with the deadline
// cleared; every record it writes carries at most MaxRecordPlaintext bytes. On
// failure it closes conn, counts the failure under its reason and returns an
// error for which Reason tells the reason (errors.Is(err, ErrOldVersion) for an
// old client). ctx cancels the handshake (shutdown).
func (s *Server) Handshake(ctx context.Context, conn net.Conn, timeout time.Duration) (*Conn, error) {
	if timeout <= 0 {
		timeout = HandshakeTimeout
	}
	rc := &rawConn{Conn: conn}
	tc := tls.Server(rc, s.config)
	_ = conn.SetDeadline(time.Now().Add(timeout))
	err := tc.HandshakeContext(ctx)
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if err != nil {
		if rc.oldVersion {
			err = fmt.Errorf("%w (%v)", ErrOldVersion, err)
		}
		s.failures[reasonIndex(Reason(err))].Add(1)
		conn.Close()
		return nil, fmt.Errorf("tlsserve: handshake with %s: %w", conn.RemoteAddr(), err)
	}
	s.handshakes.Add(1)
	return &Conn{Conn: tc, raw: conn}, nil
}

func reasonIndex(r string) int {
	for i, x := range Reasons {
		if x == r {
			return i
		}
	}
	return len(Reasons) - 1
}

// Reason classifies an error returned by Handshake into one of Reasons.
func Reason(err error) string {
	var rh tls.RecordHeaderError
	var ne net.Error
	switch {
	case errors.Is(err, ErrOldVersion):
		return ReasonOldVersion
	case errors.As(err, &rh):
		return ReasonNotTLS
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed), errors.Is(err, context.Canceled):
		return ReasonClosed
	}
	return ReasonHandshake
}

// rawConn is the TCP connection under the tls.Conn; it carries what the
// handshake callbacks learn about this one connection.
type rawConn struct {
	net.Conn
	oldVersion bool
}

// Conn is an established TLS connection whose writes are cut into records of
// at most MaxRecordPlaintext bytes. It is a net.Conn. Its Wait lets a reader
// hold no buffer while the connection is idle.
type Conn struct {
	*tls.Conn
	raw net.Conn // the TCP connection, for waiting on the socket

	peek     [1]byte // the byte Wait read, returned first by the next Read
	havePeek bool
	// empty: crypto/tls holds no complete record (the last drain ran into
	// its deadline), so Wait may wait on the socket itself.
	empty bool

	mu       sync.Mutex
	readDL   time.Time // the read deadline the user set
	draining bool      // Read has set a past deadline to drain what TLS holds
}

// Write writes p in records of at most MaxRecordPlaintext bytes each, so a
// device with a small receive buffer can take every record. It returns as
// tls.Conn.Write does. A long p is several records: concurrent Writes may
// interleave them, so one goroutine writes (listen's ack writer).
func (c *Conn) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), MaxRecordPlaintext)
		m, err := c.Conn.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// Wait blocks until the client sends application data, closes, or the read
// deadline passes, without the caller holding a read buffer: an idle
// connection then costs its goroutine and TLS state only. The byte it reads is
// returned by the next Read, which after a Wait never waits on the socket: it
// returns what TLS has already received (at least that byte), so a reader can
// borrow a pooled buffer for it and give it back before the next Wait.
func (c *Conn) Wait() error {
	if c.havePeek {
		return nil
	}
	if c.empty {
		if err := waitReadable(c.raw); err != nil {
			return err
		}
		c.empty = false
	}
	n, err := c.Conn.Read(c.peek[:])
	if n == 1 {
		c.havePeek = true
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// Read reads as tls.Conn.Read does, except after Wait (see there).
func (c *Conn) Read(p []byte) (int, error) {
	if !c.havePeek || len(p) == 0 {
		return c.Conn.Read(p)
	}
	p[0] = c.peek[0]
	c.havePeek = false
	if len(p) == 1 {
		return 1, nil
	}
	// Drain what TLS holds, decrypted or still raw, with a deadline in the
	// past: crypto/tls returns buffered data without touching the socket and
	// a timeout is not sticky, so the connection stays usable. A drain that
	// runs into the deadline leaves no complete record behind.
	c.mu.Lock()
	c.draining = true
	c.Conn.SetReadDeadline(time.Unix(1, 0))
	c.mu.Unlock()
	n := 1
	var err error
	for n < len(p) {
		var k int
		k, err = c.Conn.Read(p[n:])
		n += k
		if err != nil {
			break
		}
	}
	c.mu.Lock()
	c.draining = false
	c.Conn.SetReadDeadline(c.readDL)
	c.mu.Unlock()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.empty = true
		err = nil
	}
	return n, err
}

// SetReadDeadline sets the read deadline, also for Wait.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDL = t
	if c.draining {
		return nil // applied when the drain ends
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}
