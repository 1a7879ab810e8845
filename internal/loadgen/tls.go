package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLS, for the TCP scenarios: each connection is a TLS client (crypto/tls) to
// inlet serve's --tls port, with a certificate the bench makes for the run.

// TLSConfig is how the generator's devices speak TLS.
type TLSConfig struct {
	// Version is tls.VersionTLS12 or tls.VersionTLS13: the only one offered.
	Version uint16
	// Resume: each device keeps the session tickets the server gives it, so
	// that every handshake after its first is resumed. Without it every
	// handshake is a full one.
	Resume bool
	// Roots verifies the server's certificate; nil: not verified (a server
	// started elsewhere, --target).
	Roots *x509.CertPool
}

// ParseTLSVersion reads "1.2" or "1.3".
func ParseTLSVersion(s string) (uint16, error) {
	switch s {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("TLS version %q: want 1.2 or 1.3", s)
}

// TLSVersionName is "1.2" or "1.3".
func TLSVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// clientConfig is one device's TLS configuration: its own session cache, so
// that devices do not resume each other's sessions.
func (c *TLSConfig) clientConfig(host string) *tls.Config {
	cfg := &tls.Config{
		MinVersion: c.Version,
		MaxVersion: c.Version,
		RootCAs:    c.Roots,
		ServerName: host,
		// The key exchanges the devices' stacks (BearSSL, mbedTLS) offer: no
		// post-quantum hybrid, whose 1.2 KB key share no device sends.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
		// Loopback only (ResolveLoopback); an external target's certificate
		// is not known to the bench.
		InsecureSkipVerify: c.Roots == nil,
	}
	if c.Resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	}
	return cfg
}

// dial opens one of device's connections: TCP, and the TLS handshake when the
// run speaks TLS. tc is the device's TLS configuration (nil: no TLS).
func (g *Generator) dial(ctx context.Context, dialer *net.Dialer, tc *tls.Config) (net.Conn, error) {
	c, err := dialer.DialContext(ctx, "tcp", g.target.String())
	if err != nil || tc == nil {
		return c, err
	}
	tlsConn := tls.Client(c, tc)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	if tlsConn.ConnectionState().DidResume {
		g.resumed.Add(1)
	}
	g.handshakes.Add(1)
	return tlsConn, nil
}

// deviceTLS is the TLS configuration of a device of this run, or nil.
func (g *Generator) deviceTLS() *tls.Config {
	if g.cfg.TLS == nil {
		return nil
	}
	return g.cfg.TLS.clientConfig(g.target.Addr().String())
}

// writeTestCert writes an ECDSA P-256 self-signed certificate for the loopback
// addresses (as inlet cert makes for a LAN) to dir/bench.crt and dir/bench.key,
// and returns the pool that trusts it.
func writeTestCert(dir string) (certFile, keyFile string, roots *x509.CertPool, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return "", "", nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "inlet bench"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	certFile, keyFile = filepath.Join(dir, "bench.crt"), filepath.Join(dir, "bench.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", "", nil, err
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots, nil
}
