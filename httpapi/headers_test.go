package httpapi_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/httpapi"
	"github.com/inletdev/inlet/httpapi/ui"
	"github.com/inletdev/inlet/tlsserve"
)

// wantHeaders are the security headers every answer carries (docs/http.md).
var wantHeaders = map[string]string{
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"X-Frame-Options":              "DENY",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
}

// checkSecurityHeaders reports the security headers resp lacks; hsts says
// whether Strict-Transport-Security must be there (HTTPS) or absent (HTTP).
func checkSecurityHeaders(t *testing.T, what string, resp *http.Response, hsts bool) {
	t.Helper()
	for k, v := range wantHeaders {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %s %q, want %q", what, k, got, v)
		}
	}
	if pp := resp.Header.Get("Permissions-Policy"); !strings.Contains(pp, "camera=()") || !strings.Contains(pp, "geolocation=()") {
		t.Errorf("%s: Permissions-Policy %q", what, pp)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("%s: Content-Security-Policy %q, want frame-ancestors 'none'", what, csp)
	}
	got := resp.Header.Get("Strict-Transport-Security")
	switch {
	case hsts && !strings.HasPrefix(got, "max-age="):
		t.Errorf("%s over HTTPS: Strict-Transport-Security %q, want max-age=...", what, got)
	case !hsts && got != "":
		t.Errorf("%s over plain HTTP: Strict-Transport-Security %q, want none (it means nothing without TLS)", what, got)
	}
}

// securityPaths are answers of every kind: probes, pages, assets, the API
// with and without the token, redirects, refusals, unknown paths.
func securityPaths(token string) []struct {
	path string
	kv   []string
	code int
} {
	auth := []string{"Authorization", "Bearer " + token}
	return []struct {
		path string
		kv   []string
		code int
	}{
		{"/healthz", nil, 200},
		{"/readyz", nil, 200},
		{"/login", nil, 200},
		{"/", nil, http.StatusSeeOther},
		{"/", auth, 200},
		{"/assets/app.js", nil, 200},
		{"/assets/nothing.js", nil, 404},
		{"/api/devices", nil, 401},
		{"/api/devices", auth, 200},
		{"/api/messages?format=csv", auth, 200},
		{"/api/nothing", auth, 404},
		{"/metrics", auth, 200},
	}
}

// Every answer, whatever its kind or status, carries the security headers;
// Strict-Transport-Security only over HTTPS.
func TestSecurityHeadersHTTP(t *testing.T) {
	const token = "s3cret"
	e := newEnv(t, withToken(token))
	e.send(msg("10.0.0.5", "1"))
	e.waitCommitted(1)
	for _, c := range securityPaths(token) {
		resp, b := get(t, e.base+c.path, c.kv...)
		if resp.StatusCode != c.code {
			t.Errorf("GET %s: %s, want %d: %.200s", c.path, resp.Status, c.code, b)
		}
		checkSecurityHeaders(t, "GET "+c.path, resp, false)
	}
	// The dashboard's pages keep their own, wider policy.
	resp, _ := get(t, e.base+"/", "Authorization", "Bearer "+token)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("GET /: CSP %q, want the dashboard's (script-src 'self')", csp)
	}
	// A sign-in over plain HTTP cannot ask for a Secure cookie (the browser
	// would drop it), unless a TLS proxy says the browser talks HTTPS.
	for _, c := range []struct {
		proto  string
		secure bool
	}{{"", false}, {"https", true}} {
		hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		if c.proto != "" {
			hdr.Set("X-Forwarded-Proto", c.proto)
		}
		resp, _ := do(t, http.MethodPost, e.base+"/login", hdr, strings.NewReader(url.Values{"token": {token}, "next": {"/"}}.Encode()))
		if ck := sessionCookie(resp); ck == nil || ck.Secure != c.secure {
			t.Errorf("sign-in over HTTP (X-Forwarded-Proto %q): cookie %v, want Secure=%v", c.proto, ck, c.secure)
		}
	}
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "inlet_session" {
			return c
		}
	}
	return nil
}

// httpsServer serves httpapi.Handler over HTTPS as inlet serve
// --http-tls-cert does: http.Server.ServeTLS with httpapi.TLSConfig, the
// certificate read at every handshake from cert.
type httpsServer struct {
	addr string
	cert atomic.Pointer[tls.Certificate]
}

func startHTTPS(t *testing.T, cfg httpapi.Config, cert tls.Certificate) *httpsServer {
	t.Helper()
	s := &httpsServer{}
	s.cert.Store(&cert)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{
		Handler:   httpapi.Handler(cfg),
		TLSConfig: httpapi.TLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil }),
		ErrorLog:  log.New(io.Discard, "", 0), // the refused handshakes below
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	return s
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	ss, err := tlsserve.NewSelfSigned([]string{"localhost", "127.0.0.1"}, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(ss.CertPEM, ss.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ss.Cert)
	return cert, pool
}

func httpsClient(pool *x509.CertPool, h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:       &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2:     h2,
		ResponseHeaderTimeout: 15 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// The HTTP surface over HTTPS: TLS 1.2 and 1.3 (older refused), HTTP/2 and
// HTTP/1.1, the security headers with Strict-Transport-Security, a Secure
// session cookie, and a certificate swapped at run time reaching new
// connections.
func TestHTTPS(t *testing.T) {
	const token = "s3cret"
	cert, pool := selfSigned(t)
	stats := new(inlet.Stats)
	stats.StoreHealthy.Store(true)
	s := startHTTPS(t, httpapi.Config{Stats: stats, Ready: stats.StoreHealthy.Load, UI: ui.Files, Token: token,
		Logger: testLogger(t), AuthFailures: -1}, cert)
	base := "https://" + s.addr

	for _, h2 := range []bool{true, false} {
		c := httpsClient(pool, h2)
		for _, p := range securityPaths(token) {
			if strings.HasPrefix(p.path, "/api/") || p.path == "/assets/nothing.js" {
				continue // no store behind this server: the API is not mounted
			}
			req, _ := http.NewRequest(http.MethodGet, base+p.path, nil)
			for i := 0; i+1 < len(p.kv); i += 2 {
				req.Header.Set(p.kv[i], p.kv[i+1])
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("GET %s over HTTPS: %v", p.path, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != p.code {
				t.Errorf("GET %s over HTTPS: %s, want %d", p.path, resp.Status, p.code)
			}
			if want := map[bool]int{true: 2, false: 1}[h2]; resp.ProtoMajor != want {
				t.Errorf("GET %s: %s, want HTTP/%d", p.path, resp.Proto, want)
			}
			checkSecurityHeaders(t, "GET "+p.path+" over "+resp.Proto, resp, true)
		}
		// Signing in over HTTPS sets a Secure cookie, and signing out clears
		// it the same way.
		var session *http.Cookie
		for _, path := range []string{"/login", "/logout"} {
			req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(url.Values{"token": {token}, "next": {"/"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if session != nil {
				req.AddCookie(session)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			ck := sessionCookie(resp)
			if resp.StatusCode != http.StatusSeeOther || ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
				t.Fatalf("POST %s over HTTPS: %s, cookie %v, want 303 and a Secure, HttpOnly, SameSite=Strict cookie", path, resp.Status, ck)
			}
			session = ck
		}
	}

	// TLS 1.1 and older are refused; 1.2 and 1.3 are taken.
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13} {
		d := tls.Dialer{Config: &tls.Config{RootCAs: pool, MinVersion: v, MaxVersion: v}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := d.DialContext(ctx, "tcp", s.addr)
		cancel()
		if ok := v >= tls.VersionTLS12; ok != (err == nil) {
			t.Errorf("TLS version %s: handshake error %v, want ok=%v", tls.VersionName(v), err, ok)
		}
		if err == nil {
			c.Close()
		}
	}
	// Plain HTTP on the HTTPS port gets a clear 400, not a hang.
	resp, b := get(t, "http://"+s.addr+"/healthz")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTPS") {
		t.Errorf("plain HTTP to the HTTPS port: %s %q", resp.Status, b)
	}

	// A new certificate reaches new connections (inlet serve swaps it on SIGHUP).
	cert2, pool2 := selfSigned(t)
	s.cert.Store(&cert2)
	if resp, err := httpsClient(pool2, false).Get(base + "/healthz"); err != nil {
		t.Errorf("after the swap, a client trusting the new certificate: %v", err)
	} else {
		resp.Body.Close()
	}
	if _, err := httpsClient(pool, false).Get(base + "/healthz"); err == nil {
		t.Errorf("after the swap, a client trusting only the old certificate connected")
	}
}
