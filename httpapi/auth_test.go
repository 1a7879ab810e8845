package httpapi_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestToken(t *testing.T) {
	const token = "s3cret"
	e := newEnv(t, withToken(token), withAuthFailures(-1)) // many wrong tries here; the limit has its own test
	e.send(msg("10.0.0.111", "1"))
	base := e.base

	// The probes and the sign-in page are open.
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		resp, b := get(t, base+path)
		if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != want {
			t.Errorf("GET %s without a token: %s %q, want 200 %s", path, resp.Status, b, want)
		}
	}
	if resp, b := get(t, base+"/login"); resp.StatusCode != 200 || !bytes.Contains(bytes.ToLower(b), []byte("<form")) {
		t.Errorf("GET /login: %s, %.200s", resp.Status, b)
	}
	// Everything else needs it.
	protected := []string{"/api/devices", "/api/overview", "/api/messages", "/api/series?device=10.0.0.111", "/metrics", "/api/nothing", "/api/stream"}
	refused := 0
	for _, path := range protected {
		for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "Basic " + token},
			{"Authorization", "Bearer " + token + "x"}, {"Cookie", "inlet_session=" + token}} {
			resp, b := get(t, base+path, hdr...)
			refused++
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s with %q: %s, want 401: %.200s", path, hdr, resp.Status, b)
				continue
			}
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("GET %s: 401 with WWW-Authenticate %q, want Bearer", path, resp.Header.Get("WWW-Authenticate"))
			}
			if !bytes.Contains(b, []byte(`"error"`)) {
				t.Errorf("GET %s: 401 body %q, want a JSON error", path, b)
			}
		}
		if path == "/api/stream" {
			continue
		}
		resp, b := get(t, base+path, "Authorization", "Bearer "+token)
		want := 200
		if path == "/api/nothing" {
			want = 404
		}
		if resp.StatusCode != want {
			t.Errorf("GET %s with the token: %s, want %d: %.200s", path, resp.Status, want, b)
		}
	}
	// The scheme is case-insensitive.
	if resp, _ := get(t, base+"/api/devices", "Authorization", "bearer "+token); resp.StatusCode != 200 {
		t.Errorf("GET with \"bearer\": %s, want 200", resp.Status)
	}
	// Refusals are counted by code.
	if got := scrape(t, base, "Authorization", "Bearer "+token)[`inlet_http_requests_total{code="401"}`]; got != float64(refused) {
		t.Errorf("inlet_http_requests_total{code=\"401\"} = %v after %d refusals", got, refused)
	}
	// The stream with the token.
	s := openSSE(t, base+"/api/stream?after_id=0", "Authorization", "Bearer "+token)
	if ev := s.next(10 * time.Second); !strings.Contains(ev.data, `"payload":"1"`) {
		t.Errorf("stream with the token: %+v", ev)
	}
	s.close()

	// A browser is sent to the sign-in page, keeping where it was going.
	resp, _ := get(t, base+"/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2F" {
		t.Errorf("GET / without a session: %s Location %q, want 303 to /login?next=%%2F", resp.Status, resp.Header.Get("Location"))
	}
	post := func(form url.Values, kv ...string) *http.Response {
		t.Helper()
		hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		for i := 0; i+1 < len(kv); i += 2 {
			hdr.Add(kv[i], kv[i+1])
		}
		resp, _ := do(t, http.MethodPost, base+"/login", hdr, strings.NewReader(form.Encode()))
		return resp
	}
	// The right token: a session cookie and a redirect.
	resp = post(url.Values{"token": {token}, "next": {"/"}})
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "inlet_session" {
			session = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("POST /login: %s Location %q, want 303 to /", resp.Status, resp.Header.Get("Location"))
	}
	if session == nil || session.Value == "" || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure {
		t.Fatalf("POST /login: cookie %+v, want inlet_session, HttpOnly, SameSite=Strict, not Secure over plain HTTP", session)
	}
	if strings.Contains(session.Value, token) {
		t.Errorf("the session cookie holds the token itself: %q", session.Value)
	}
	// Behind a TLS-terminating proxy the cookie is Secure.
	for _, c := range post(url.Values{"token": {token}}, "X-Forwarded-Proto", "https").Cookies() {
		if c.Name == "inlet_session" && !c.Secure {
			t.Errorf("the session cookie behind an HTTPS proxy is not Secure")
		}
	}
	cookie := "inlet_session=" + session.Value
	if resp, b := get(t, base+"/api/devices", "Cookie", cookie); resp.StatusCode != 200 || !bytes.Contains(b, []byte("10.0.0.111")) {
		t.Errorf("GET /api/devices with the session: %s %.200s", resp.Status, b)
	}
	if resp, _ := get(t, base+"/", "Cookie", cookie); resp.StatusCode != 200 ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET / with the session: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if resp, _ := get(t, base+"/metrics", "Cookie", "inlet_session="+session.Value+"0"); resp.StatusCode != 401 {
		t.Errorf("a forged session: %s, want 401", resp.Status)
	}
	// next keeps its path on this site, never off it: checked as a browser reads
	// the Location (WHATWG URL parsing drops ASCII tabs and newlines, and treats
	// a backslash like a slash).
	t.Run("next stays on this site", func(t *testing.T) {
		for next, want := range map[string]string{
			"/api/devices?x=1":       "/api/devices?x=1",
			"//evil.example":         "/",
			"//evil.example/x":       "/",
			"https://evil.example/":  "/",
			"/\\evil.example":        "/",
			"javascript:alert(1)":    "/",
			"":                       "/",
			"\\\\evil.example":       "/",
			"/%2F/evil.example":      "/%2F/evil.example",
			"http:/\\/evil.example/": "/",
			"/\t/evil.example":       "/",
			"/\n/evil.example":       "", // anything on this site
			"/\r\n/evil.example":     "",
			"\t//evil.example":       "/",
			"/ /evil.example":        "",
			"/\x7f/evil.example":     "",
		} {
			resp := post(url.Values{"token": {token}, "next": {next}})
			loc := resp.Header.Get("Location")
			browser := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(strings.TrimSpace(loc))
			if u, err := url.Parse(browser); resp.StatusCode != http.StatusSeeOther || err != nil || u.Host != "" ||
				u.Scheme != "" || strings.HasPrefix(browser, "//") {
				t.Errorf("BUG: POST /login next=%q: %s Location %q, which a browser follows off-site (as %q); want %q",
					next, resp.Status, loc, browser, want)
			} else if want != "" && loc != want && !(want == "/" && browser == "/") {
				t.Errorf("POST /login next=%q: Location %q, want %q", next, loc, want)
			}
		}
	})
	// A wrong token: back to the form with error=1 and next kept, and no cookie.
	resp = post(url.Values{"token": {"guess"}, "next": {"/api/devices"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?error=1&next=%2Fapi%2Fdevices" {
		t.Errorf("POST /login with a wrong token: %s Location %q", resp.Status, resp.Header.Get("Location"))
	}
	for _, c := range resp.Cookies() {
		if c.Name == "inlet_session" && c.Value != "" {
			t.Errorf("a wrong token set a session cookie")
		}
	}
	// Logout clears the cookie.
	resp, _ = do(t, http.MethodPost, base+"/logout", http.Header{"Cookie": {cookie}}, nil)
	cleared := false
	for _, c := range resp.Cookies() {
		cleared = cleared || (c.Name == "inlet_session" && c.Value == "" && c.MaxAge < 0)
	}
	if resp.StatusCode != http.StatusSeeOther || !cleared {
		t.Errorf("POST /logout: %s, cookies %v", resp.Status, resp.Cookies())
	}

	// The session is valid until the token changes: a server with the same
	// token takes it, one with another token does not.
	same := newEnv(t, withToken(token))
	if resp, b := get(t, same.base+"/api/devices", "Cookie", cookie); resp.StatusCode != 200 {
		t.Errorf("the session with the same token on another server: %s %.200s", resp.Status, b)
	}
	other := newEnv(t, withToken("n3w"))
	if resp, _ := get(t, other.base+"/api/devices", "Cookie", cookie); resp.StatusCode != 401 {
		t.Errorf("the session after the token changed: %s, want 401", resp.Status)
	}
}

// Without a token everything is open and /login leads to the dashboard.
func TestNoToken(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/", "/index.html", "/api/devices", "/metrics"} {
		if resp, b := get(t, e.base+p); resp.StatusCode != 200 {
			t.Errorf("GET %s without a token configured: %s %.200s", p, resp.Status, b)
		}
	}
	resp, _ := do(t, http.MethodPost, e.base+"/login", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		strings.NewReader("token=x&next=//evil.example"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("POST /login without a token configured: %s Location %q, want 303 to /", resp.Status, resp.Header.Get("Location"))
	}
}

// Pages are served only at / and /login, with their CSP: /assets/ serves
// scripts and styles (open without the token: no data), never HTML.
func TestAssets(t *testing.T) {
	e := newEnv(t, withToken("s3cret"))
	for _, p := range []string{"/assets/", "/assets/index.html", "/assets/login.html", "/assets/vendor/",
		"/assets/%C0%AE%C0%AE/x", "/assets/%C0%AF", "/assets/%FF"} { // overlong and invalid UTF-8: 404, not 500
		if resp, _ := get(t, e.base+p); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	resp, b := get(t, e.base+"/assets/app.js")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" || len(b) == 0 ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET /assets/app.js without a token: %d, CSP %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), len(b))
	}
	resp, _ = get(t, e.base+"/", "Authorization", "Bearer s3cret")
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("GET /: %d, CSP %q", resp.StatusCode, csp)
	}
}

// /readyz fails while the store is failing commits; /healthz does not.
func TestProbes(t *testing.T) {
	e := newEnv(t)
	if resp, b := get(t, e.base+"/readyz"); resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "ready" {
		t.Errorf("/readyz: %s %q", resp.Status, b)
	}
	e.stats.StoreHealthy.Store(false)
	defer e.stats.StoreHealthy.Store(true)
	if resp, _ := get(t, e.base+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with a failing store: %s, want 503", resp.Status)
	}
	if resp, b := get(t, e.base+"/healthz"); resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "ok" {
		t.Errorf("/healthz with a failing store: %s %q", resp.Status, b)
	}
}

// Guessing the token is slowed per address, by the API and by the sign-in form
// alike; a wrong guess from one address does not lock out another.
func TestAuthFailuresLimited(t *testing.T) {
	const token = "s3cret"
	e := newEnv(t, withToken(token), withAuthFailures(4))
	for i := range 4 {
		if resp, _ := get(t, e.base+"/api/devices", "Authorization", "Bearer guess"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %s, want 401", i, resp.Status)
		}
	}
	resp, _ := get(t, e.base+"/api/devices", "Authorization", "Bearer "+token)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 4 wrong tokens, even the right one: %s (Retry-After %q), want 429 with Retry-After",
			resp.Status, resp.Header.Get("Retry-After"))
	}
	form := url.Values{"token": {"guess"}, "next": {"/"}}.Encode()
	resp, _ = do(t, http.MethodPost, e.base+"/login", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(form))
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("sign-in from the blocked address: %s, want 429", resp.Status)
	}
	// A request without any credential is not a guess: the dashboard's first
	// visit must not use up the budget.
	other := newEnv(t, withToken(token), withAuthFailures(1))
	for range 3 {
		if resp, _ := get(t, other.base+"/api/devices"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("no credential: %s, want 401", resp.Status)
		}
	}
	if resp, _ := get(t, other.base+"/api/devices", "Authorization", "Bearer "+token); resp.StatusCode != http.StatusOK {
		t.Fatalf("right token after requests without one: %s, want 200", resp.Status)
	}
	// Failed sign-ins count too.
	for range 1 {
		do(t, http.MethodPost, other.base+"/login", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(form))
	}
	if resp, _ := get(t, other.base+"/api/devices", "Authorization", "Bearer "+token); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after a failed sign-in with a limit of 1: %s, want 429", resp.Status)
	}
}
