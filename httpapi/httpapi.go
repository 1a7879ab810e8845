// Package httpapi owns inlet's HTTP surface: the JSON API over stored messages
// and devices, the server-sent event stream of committed messages, the embedded
// dashboard, the token and sign-in check in front of them, Prometheus metrics and
// the health probes. It reads the store (inlet.Reader), the live figures
// (live.Hub) and the shared inlet.Stats; it never writes to the store or the
// device sockets. docs/http.md is its contract.
package httpapi

import (
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/live"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config is what the HTTP surface serves from.
type Config struct {
	Stats  *inlet.Stats
	Ready  func() bool  // listeners bound and the store accepting commits
	Reader inlet.Reader // the store, for the API and streams; nil serves probes and metrics only
	Hub    *live.Hub    // live figures and commit signals; required with Reader
	UI     fs.FS        // the dashboard's files (index.html, login.html, assets); nil: no dashboard
	Token  string       // when set, required by everything but the probes and the sign-in
	// AuthFailures is how many wrong tokens or sign-ins one IP address may send
	// in a minute before it is answered 429 for the rest of it (default
	// DefaultAuthFailures; negative: no limit).
	AuthFailures int
	Logger       *slog.Logger
	// Version and Listen (the device listeners' addresses by transport) are
	// reported by /api/overview.
	Version string
	Listen  map[string]string
	Hosts   []string // addresses of this machine that devices on the network can reach (non-loopback interface IPs)
	// MaxStreams bounds concurrent /api/stream subscribers (default 256).
	MaxStreams int
	// StreamWriteTimeout is how long a stream write may block before the
	// subscriber is dropped (default 10 s).
	StreamWriteTimeout time.Duration
	// Stop, when closed, ends every open stream (http.Server.Shutdown waits for
	// handlers, and a stream never ends by itself).
	Stop <-chan struct{}
	// Extra, when set, is served for paths nothing else matches (after the token
	// check): the server mounts its profiler here.
	Extra http.Handler
}

// Handler returns the HTTP surface. Requests are cancelled when ctx ends.
func Handler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 256
	}
	if cfg.StreamWriteTimeout <= 0 {
		cfg.StreamWriteTimeout = 10 * time.Second
	}
	if cfg.Ready == nil {
		cfg.Ready = func() bool { return true }
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "inlet_http_requests_total", Help: "HTTP requests answered, by status code.",
	}, []string{"code"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(&statsCollector{s: cfg.Stats}, requests)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !cfg.Ready() {
			http.Error(w, "not ready: store is failing commits", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if cfg.Reader != nil {
		a := &api{cfg: cfg, streams: make(chan struct{}, cfg.MaxStreams), series1: make(chan struct{}, 2),
			feed: newFeed(cfg.Reader, cfg.Hub, cfg.Stats, cfg.Stop, cfg.Logger)}
		mux.HandleFunc("GET /api/devices", a.devices)
		mux.HandleFunc("GET /api/overview", a.overview)
		mux.HandleFunc("GET /api/messages", a.messages)
		mux.HandleFunc("GET /api/series", a.series)
		mux.HandleFunc("GET /api/stream", a.stream)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/devices", "/api/overview", "/api/messages", "/api/series", "/api/stream":
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+": only GET")
			return
		}
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path+" (see docs/http.md)")
	})
	if cfg.AuthFailures == 0 {
		cfg.AuthFailures = DefaultAuthFailures
	}
	au := newAuth(cfg.Token, cfg.UI, cfg.AuthFailures)
	if cfg.UI != nil {
		serveUI(mux, cfg.UI, au)
	}
	if cfg.Extra != nil {
		mux.Handle("/debug/", cfg.Extra)
	}
	var h http.Handler = secureHeaders(au.require(mux))
	return countCodes(h, requests)
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// writeError answers {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// statusWriter records the status code of a response. It unwraps, so
// http.ResponseController still reaches the connection (flush, deadlines).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func countCodes(h http.Handler, c *prometheus.CounterVec) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			c.WithLabelValues(strconv.Itoa(code)).Inc()
		}()
		h.ServeHTTP(sw, r)
	})
}
