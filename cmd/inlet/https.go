package main

import (
	"errors"
	"flag"
	"fmt"
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

// serveHTTP starts m.http on m.httpLn: over HTTPS with --http-tls-cert, plain
// HTTP otherwise.
func (m *Main) serveHTTP() error {
	cfg := &m.Config
	if cfg.HTTPTLSCert == "" {
		go m.http.Serve(m.httpLn)
		return nil
	}
	var err error
	if m.httpTLS, err = tlsserve.Load(cfg.HTTPTLSCert, cfg.HTTPTLSKey); err != nil {
		return fmt.Errorf("--http-tls-cert/--http-tls-key: %w", err)
	}
	m.http.TLSConfig = httpapi.TLSConfig(m.httpTLS.Config().GetCertificate)
	m.logHTTPSCert("https: certificate loaded", m.httpTLS.Info())
	go m.http.ServeTLS(m.httpLn, "", "")
	return nil
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
