package httpapi_test

// The test environment: httpapi.Handler behind an httptest server, over a real
// SQLite store in a temp dir fed by the real commit writer, with the live hub on
// the writer's commit hook, wired as inlet serve wires them.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/commit"
	"github.com/inletdev/inlet/httpapi"
	"github.com/inletdev/inlet/httpapi/ui"
	"github.com/inletdev/inlet/live"
	"github.com/inletdev/inlet/sqlite"
)

type env struct {
	t      testing.TB
	db     string
	store  *sqlite.Store
	hub    *live.Hub
	writer *commit.Writer
	stats  *inlet.Stats
	srv    *httptest.Server
	base   string
	stop   chan struct{}

	stopOnce sync.Once
	closed   bool
}

type envOption func(*httpapi.Config)

func withToken(tok string) envOption { return func(c *httpapi.Config) { c.Token = tok } }

func withAuthFailures(n int) envOption { return func(c *httpapi.Config) { c.AuthFailures = n } }

func withWriteTimeout(d time.Duration) envOption {
	return func(c *httpapi.Config) { c.StreamWriteTimeout = d }
}

func withMaxStreams(n int) envOption { return func(c *httpapi.Config) { c.MaxStreams = n } }

func withQuietLog() envOption {
	return func(c *httpapi.Config) { c.Logger = slog.New(slog.DiscardHandler) }
}

// newEnv starts a store, writer, hub and HTTP surface; everything is closed
// when the test ends.
func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newEnvAt(t, filepath.Join(t.TempDir(), "inlet.db"), opts...)
}

func newEnvAt(t testing.TB, db string, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, db: db, stats: new(inlet.Stats), stop: make(chan struct{})}
	var err error
	if e.store, err = sqlite.Open(ctx, db, sqlite.Options{}); err != nil {
		t.Fatal(err)
	}
	if e.hub, err = live.New(ctx, e.store); err != nil {
		t.Fatal(err)
	}
	hubCtx, stopHub := context.WithCancel(context.Background())
	go e.hub.Run(hubCtx)
	if e.writer, err = commit.New(ctx, e.store, commit.Config{Stats: e.stats, OnCommit: e.hub.OnCommit}); err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.Config{
		Stats:   e.stats,
		Ready:   e.stats.StoreHealthy.Load,
		Reader:  e.store,
		Hub:     e.hub,
		UI:      ui.Files,
		Logger:  testLogger(t),
		Version: "test",
		Listen:  map[string]string{"tcp": "127.0.0.1:3000"},
		Stop:    e.stop,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.srv = httptest.NewServer(httpapi.Handler(cfg))
	e.base = e.srv.URL
	t.Cleanup(func() {
		e.close()
		stopHub()
	})
	return e
}

// close shuts down as inlet serve does: streams are told to stop, the server
// closes, the writer commits what is queued, the store closes.
func (e *env) close() {
	if e.closed {
		return
	}
	e.closed = true
	e.stopStreams()
	e.srv.CloseClientConnections()
	e.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.writer.Close(ctx); err != nil {
		e.t.Errorf("writer close: %v", err)
	}
	e.store.Close()
}

func (e *env) stopStreams() { e.stopOnce.Do(func() { close(e.stop) }) }

// testLogger sends server logs to the test log, so a failure shows them.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// msg is a plain-mode message from device (an IP address, as the listeners name
// plain devices) over TCP.
func msg(device, payload string) inlet.Message {
	m := inlet.Message{Device: device, Transport: inlet.TCP, Payload: []byte(payload)}
	if a, err := netip.ParseAddr(device); err == nil {
		m.Remote = netip.AddrPortFrom(a, 50000)
	}
	return m
}

// udp is a plain-mode datagram from device.
func udp(device, payload string) inlet.Message {
	m := msg(device, payload)
	m.Transport = inlet.UDP
	return m
}

// acked is an acknowledged-mode message.
func acked(device, boot string, seq int64, payload string) inlet.Message {
	return inlet.Message{Device: device, Transport: inlet.TCP, Remote: netip.MustParseAddrPort("127.0.0.1:40000"),
		Boot: boot, Seq: seq, Payload: []byte(payload)}
}

// counterMsgs are the tutorial's counter readings from..to of device.
func counterMsgs(device string, from, to int) []inlet.Message {
	var out []inlet.Message
	for n := from; n <= to; n++ {
		out = append(out, msg(device, strconv.Itoa(n)))
	}
	return out
}

// send submits msgs as one submission and waits until they are committed.
func (e *env) send(msgs ...inlet.Message) {
	e.t.Helper()
	want := e.stats.Committed.Load() + int64(len(msgs))
	if err := e.writer.Submit(context.Background(), msgs); err != nil {
		e.t.Fatalf("submit: %v", err)
	}
	e.waitCommitted(want)
}

// waitCommitted waits until n messages have been committed in all.
func (e *env) waitCommitted(n int64) {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("%d committed messages", n), 20*time.Second, func() bool {
		return e.stats.Committed.Load() >= n
	})
}

// stored reads every stored message matching q.
func (e *env) stored(q inlet.Query) []inlet.Stored {
	e.t.Helper()
	var out []inlet.Stored
	err := e.store.Messages(context.Background(), q, func(m *inlet.Stored) error {
		c := *m
		c.Payload = append([]byte(nil), m.Payload...)
		c.Fields = append([]byte(nil), m.Fields...)
		out = append(out, c)
		return nil
	})
	if err != nil {
		e.t.Fatalf("messages: %v", err)
	}
	return out
}

func ids(ms []inlet.Stored) []int64 {
	out := make([]int64, len(ms))
	for i := range ms {
		out[i] = ms[i].ID
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes; no test sleeps blindly.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ---- HTTP helpers ----------------------------------------------------------

// transport sends the tests' plain requests; it follows no redirects.
var transport = &http.Transport{ResponseHeaderTimeout: 15 * time.Second}

// do sends one request and returns the response with its whole body.
func do(t testing.TB, method, u string, hdr http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := transport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, u, err)
	}
	return resp, b
}

// get is a GET with optional header name/value pairs.
func get(t testing.TB, u string, kv ...string) (*http.Response, []byte) {
	t.Helper()
	hdr := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		hdr.Add(kv[i], kv[i+1])
	}
	return do(t, http.MethodGet, u, hdr, nil)
}

// getJSON GETs u, wants 200 and JSON, and decodes the answer into v.
func getJSON(t testing.TB, u string, v any, kv ...string) []byte {
	t.Helper()
	resp, b := get(t, u, kv...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s: Content-Type %q, want application/json", u, ct)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", u, err, b)
	}
	return b
}

// wantError wants status code and a JSON {"error": "..."} answer that mentions what.
func wantError(t testing.TB, u string, code int, what string) {
	t.Helper()
	resp, b := get(t, u)
	if resp.StatusCode != code {
		t.Errorf("GET %s: %s, want %d: %s", u, resp.Status, code, b)
		return
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s: error Content-Type %q, want JSON", u, ct)
	}
	var e map[string]any
	if err := json.Unmarshal(b, &e); err != nil {
		t.Errorf("GET %s: error body is not JSON: %v: %q", u, err, b)
		return
	}
	msg, _ := e["error"].(string)
	if msg == "" || len(e) != 1 {
		t.Errorf("GET %s: error body %s, want {\"error\": \"...\"}", u, b)
	}
	if !strings.Contains(msg, what) {
		t.Errorf("GET %s: error %q does not mention %q", u, msg, what)
	}
}

// rawGET sends a GET on a raw connection and never reads the answer unless
// the caller does.
func rawGET(t testing.TB, addr, path string, kv ...string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var hdr strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&hdr, "%s: %s\r\n", kv[i], kv[i+1])
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: inlet\r\n%s\r\n", path, hdr.String()); err != nil {
		t.Fatal(err)
	}
	return c
}

// readResponse reads the response head of a raw GET.
func readResponse(t testing.TB, c net.Conn, d time.Duration) (*http.Response, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	return http.ReadResponse(bufio.NewReaderSize(c, 64<<10), nil)
}

// scrape reads /metrics into "name{labels}" → value, exactly as printed.
func scrape(t testing.TB, base string, kv ...string) map[string]float64 {
	t.Helper()
	resp, b := get(t, base+"/metrics", kv...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s: %s", resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics Content-Type %q, want the text format", ct)
	}
	out := make(map[string]float64)
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}
