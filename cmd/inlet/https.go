package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/inletdev/inlet/httpapi"
	"github.com/inletdev/inlet/tlsserve"
)

// addHTTPSFlags adds serve's --http-tls-cert and --http-tls-key.
func addHTTPSFlags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.HTTPTLSCert, "http-tls-cert", cfg.HTTPTLSCert, "PEM certificate (chain) file: serve --http over HTTPS (TLS 1.2+);\n"+
		"may be the --tls-cert file; SIGHUP reloads it (docs/security.md)")
	fs.StringVar(&cfg.HTTPTLSKey, "http-tls-key", cfg.HTTPTLSKey, "PEM private key file of --http-tls-cert (may be the --tls-key file)")
}

// validateHTTPS checks the HTTPS flags: both files or neither, and an HTTP
// address to serve them on.
func (c *Config) validateHTTPS() error {
	switch {
	case c.HTTPTLSCert == "" && c.HTTPTLSKey == "":
		return nil
	case c.HTTPTLSCert == "" || c.HTTPTLSKey == "":
		return errors.New("--http-tls-cert and --http-tls-key go together: make a pair with `inlet cert --dir DIR --host NAME[,IP...]` " +
			"and pass --http-tls-cert DIR/inlet.crt --http-tls-key DIR/inlet.key (docs/security.md)")
	case c.HTTP == "":
		return errors.New("--http-tls-cert and --http-tls-key need --http ADDR (HTTP is off)")
	}
	return nil
}

// loadHTTPTLS reads the HTTPS certificate (--http-tls-cert), if any, before
// the store is opened: a bad file must not leave a new database behind.
func (m *Main) loadHTTPTLS() error {
	cfg := &m.Config
	if cfg.HTTPTLSCert == "" {
		return nil
	}
	var err error
	if m.httpTLS, err = tlsserve.Load(cfg.HTTPTLSCert, cfg.HTTPTLSKey); err != nil {
		return fmt.Errorf("--http-tls-cert/--http-tls-key: %w", err)
	}
	m.logHTTPSCert("https: certificate loaded", m.httpTLS.Info())
	return nil
}

// serveHTTP starts m.http on m.httpLn: over HTTPS with --http-tls-cert, plain
// HTTP otherwise.
func (m *Main) serveHTTP() {
	if m.httpTLS == nil {
		go m.http.Serve(m.httpLn)
		return
	}
	m.http.TLSConfig = httpapi.TLSConfig(m.httpTLS.Config().GetCertificate)
	go m.http.ServeTLS(m.httpLn, "", "")
}

// reloadHTTPTLS reads the HTTPS certificate files again (SIGHUP).
func (m *Main) reloadHTTPTLS() {
	if m.httpTLS == nil {
		return
	}
	info, err := m.httpTLS.Reload()
	if err != nil {
		m.Logger.Error("https: certificate not reloaded; keeping the one in use", "err", err,
			"sha1", m.httpTLS.Info().SHA1)
		return
	}
	m.logHTTPSCert("https: certificate reloaded", info)
}

func (m *Main) logHTTPSCert(msg string, info tlsserve.CertInfo) {
	m.Logger.Info(msg, "subject", info.Subject, "key", info.KeyType, "sha1", info.SHA1,
		"not_after", info.NotAfter.UTC().Format(time.RFC3339))
	if time.Until(info.NotAfter) < 0 {
		m.Logger.Warn("https: certificate has expired; browsers and inlet tail --ca will refuse it", "not_after", info.NotAfter)
	}
}

// httpClient is the client of inlet tail and inlet health. With caFile it
// trusts the PEM certificates in that file, and only them: a server whose
// certificate is one of them is taken whatever name it was reached by (the
// certificate is pinned: inlet cert makes a self-signed one for the LAN names,
// and tail or health may reach it as 127.0.0.1), and one whose chain leads to
// one of them is checked as usual, name included. Without caFile the system's
// roots are used.
func httpClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return &http.Client{}, nil
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	pool := x509.NewCertPool()
	var pinned [][]byte
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--ca %s: %w", caFile, err)
		}
		pool.AddCert(c)
		pinned = append(pinned, c.Raw)
	}
	if len(pinned) == 0 {
		return nil, fmt.Errorf("--ca %s: no PEM certificate in it (want the server's certificate, e.g. inlet.crt from inlet cert)", caFile)
	}
	verify := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the server sent no certificate")
		}
		leaf := cs.PeerCertificates[0]
		for _, p := range pinned {
			if bytes.Equal(leaf.Raw, p) {
				return nil
			}
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: cs.ServerName}); err != nil {
			return fmt.Errorf("the server's certificate (sha1 %s) is not in and not signed by --ca %s: %w",
				tlsserve.Fingerprint(leaf.Raw), caFile, err)
		}
		return nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// The standard check is replaced by verify, which does it against the
	// pool after looking for a pinned certificate; it is never skipped.
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, VerifyConnection: verify}
	return &http.Client{Transport: tr}, nil
}
