package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// cookieName is the dashboard's session cookie (docs/http.md).
const cookieName = "inlet_session"

// auth checks the HTTP token. The session cookie holds an HMAC of a fixed text
// keyed by the token: it proves the token was typed without storing it in the
// browser, needs no server-side session table, and stops working when the token
// changes.
type auth struct {
	token   string
	session string
	ui      fs.FS
	limit   *failLimit // failed authentications per client IP
}

func newAuth(token string, ui fs.FS, failures int) *auth {
	a := &auth{token: token, ui: ui, limit: newFailLimit(failures)}
	if token != "" {
		m := hmac.New(sha256.New, []byte(token))
		m.Write([]byte("inlet dashboard session v1"))
		a.session = hex.EncodeToString(m.Sum(nil))
	}
	return a
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// allowed reports whether r carries the token or a valid session cookie, and
// whether it presented a credential at all (a wrong one counts as a failure).
func (a *auth) allowed(r *http.Request) (ok, presented bool) {
	if a.token == "" {
		return true, false
	}
	if h := r.Header.Get("Authorization"); h != "" {
		presented = true
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") && equal(strings.TrimSpace(tok), a.token) {
			return true, true
		}
	}
	if c, err := r.Cookie(cookieName); err == nil {
		presented = true
		if equal(c.Value, a.session) {
			return true, true
		}
	}
	return false, presented
}

// open lists what needs no token: the probes, the sign-in and the dashboard's
// static files (code and styles, no data).
func open(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/login" || strings.HasPrefix(path, "/assets/")
}

func (a *auth) require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if open(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		ip := clientIP(r)
		if blocked, left := a.limit.blocked(ip); blocked {
			tooMany(w, left)
			return
		}
		ok, presented := a.allowed(r)
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		if presented {
			a.limit.fail(ip)
		}
		if a.ui != nil && (r.URL.Path == "/" || r.URL.Path == "/index.html") {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="inlet"`)
		writeError(w, http.StatusUnauthorized, "unauthorized: send Authorization: Bearer <token> (the --http-token), or sign in at /login")
	})
}

// safeNext keeps a post-sign-in redirect on this site: a path, not starting with
// "//", with no backslash, space or control character anywhere (browsers drop
// tabs and newlines and read "\\" as "/", so "/\t/evil.example" would leave).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

func (a *auth) login(w http.ResponseWriter, r *http.Request) {
	if a.token == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if r.Method == http.MethodGet {
		serveFile(w, r, a.ui, "login.html")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "sign-in: "+err.Error())
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	ip := clientIP(r)
	if blocked, left := a.limit.blocked(ip); blocked {
		tooMany(w, left)
		return
	}
	if !equal(r.PostForm.Get("token"), a.token) {
		a.limit.fail(ip)
		time.Sleep(250 * time.Millisecond) // each failure waits (in parallel: nobody queues behind it)
		http.Redirect(w, r, "/login?error=1&next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: a.session, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure(r)})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// secure reports whether the browser talks HTTPS: to inlet itself
// (--http-tls-cert), or to a TLS-terminating proxy in front of it. The session
// cookie is then Secure: the browser never sends it over plain HTTP.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (a *auth) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure(r)})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// csp allows the dashboard its own files only: device payloads are shown as
// text, and even a bug that put one into markup could not run a script.
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func serveUI(mux *http.ServeMux, ui fs.FS, a *auth) {
	index := func(w http.ResponseWriter, r *http.Request) { serveFile(w, r, ui, "index.html") }
	mux.HandleFunc("GET /{$}", index)
	mux.HandleFunc("GET /index.html", index)
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	files := http.FileServerFS(ui)
	mux.Handle("GET /assets/", http.StripPrefix("/assets", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Scripts, styles and the licence only: pages are served (with their
		// CSP, behind the token) at / and /login, never from here.
		// A name that is no valid file path (bad UTF-8 such as an overlong
		// "%C0%AE") is not found, not a server error.
		if p := r.URL.Path; strings.HasSuffix(p, "/") || strings.HasSuffix(p, ".html") ||
			!utf8.ValidString(p) || !fs.ValidPath(strings.TrimPrefix(p, "/")) {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", csp)
		files.ServeHTTP(w, r)
	})))
}

func serveFile(w http.ResponseWriter, r *http.Request, ui fs.FS, name string) {
	b, err := fs.ReadFile(ui, name)
	if err != nil {
		http.Error(w, "dashboard file missing: "+name, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", csp) // the other security headers are secureHeaders'
	w.Write(b)
}
