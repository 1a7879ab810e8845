package httpapi

import (
	"crypto/tls"
	"net/http"
)

// apiCSP is the Content-Security-Policy of every answer that is not a
// dashboard page (JSON, CSV, the event stream, metrics, probes, errors): none
// of them is a document that may load anything or be framed. The dashboard's
// pages and assets replace it with csp.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// hsts is the Strict-Transport-Security value sent over HTTPS only: a year,
// without includeSubDomains (inlet serves one host and knows nothing of its
// neighbours). Browsers ignore it from a certificate they had to be told to
// accept, so a self-signed LAN certificate does not lock anyone out.
const hsts = "max-age=31536000"

// permissionsPolicy switches off the browser features the dashboard never uses.
const permissionsPolicy = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), " +
	"microphone=(), payment=(), usb=()"

// secureHeaders sets the security headers of docs/http.md on every answer,
// before anything else runs, so refusals, redirects and 404s carry them too.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", permissionsPolicy)
		h.Set("Content-Security-Policy", apiCSP)
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", hsts)
		}
		next.ServeHTTP(w, r)
	})
}

// TLSConfig is the *tls.Config of the HTTPS listener (serve --http-tls-cert):
// TLS 1.2 and 1.3 only, ECDHE with an AEAD in TLS 1.2, HTTP/2 and HTTP/1.1.
// getCert is asked at every handshake, so a certificate reloaded on SIGHUP
// reaches new connections at once and open ones keep theirs.
func TLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		},
		GetCertificate: getCert,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
