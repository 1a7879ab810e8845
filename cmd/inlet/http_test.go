package main

// Whole-server tests of the HTTP surface: the listeners, the writer, the store
// and httpapi wired as inlet serve wires them, fed over real TCP and UDP
// sockets on loopback, and the token flags of the real binary. The API's own
// contract (docs/http.md) is tested in httpapi.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// htTransport sends the tests' plain requests; it follows no redirects.
var htTransport = &http.Transport{ResponseHeaderTimeout: 15 * time.Second}

func htBase(m *Main) string { return "http://" + m.ReadyInfo().HTTP }

// htGet is a GET with optional header name/value pairs; it returns the whole body.
func htGet(t testing.TB, u string, kv ...string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := htTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", u, err)
	}
	return resp, b
}

// htJSON GETs u, wants 200, and decodes the answer into v.
func htJSON(t testing.TB, u string, v any) []byte {
	t.Helper()
	resp, b := htGet(t, u)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", u, err, b)
	}
	return b
}

// htDev is one emulated device on a persistent TCP connection: its lines are
// stored in the order written.
type htDev struct {
	t testing.TB
	c net.Conn
}

func htDial(t testing.TB, src, addr string) *htDev {
	t.Helper()
	c := dialFrom(t, src, addr)
	t.Cleanup(func() { c.Close() })
	return &htDev{t: t, c: c}
}

func (d *htDev) send(lines ...string) {
	d.t.Helper()
	d.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(d.c, strings.Join(lines, "")); err != nil {
		d.t.Fatalf("device write: %v", err)
	}
}

// counters returns the tutorial lines "from\r\n" … "to\r\n".
func counters(from, to int) []string {
	var out []string
	for n := from; n <= to; n++ {
		out = append(out, fmt.Sprintf("%d\r\n", n))
	}
	return out
}

// scrape reads /metrics into "name{labels}" → value, exactly as printed.
func scrape(t testing.TB, base string) map[string]float64 {
	t.Helper()
	resp, b := htGet(t, base+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s: %s", resp.Status, b)
	}
	out := make(map[string]float64)
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// sseEvents reads the message events (id and data) of an event stream as they
// come, until it ends.
func sseEvents(r io.Reader) <-chan [2]string {
	out := make(chan [2]string, 1024)
	go func() {
		defer close(out)
		br := bufio.NewReader(r)
		var id, data string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if data != "" {
					out <- [2]string{id, data}
				}
				id, data = "", ""
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			}
		}
	}()
	return out
}

// stalledGET sends a GET and never reads the answer, with a small receive
// buffer so the server's writes block soon.
func stalledGET(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetReadBuffer(4096)
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: inlet\r\n\r\n", path)
	return c
}

// The whole server behind HTTP: what devices send over TCP and UDP (plain and
// acknowledged) shows in the API, the stream and the metrics, the API agrees
// with `inlet devices` and `inlet export`, and shutdown ends streams and
// stalled exports at once.
func TestHTTPServesTheServer(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxMessage = 512
	logs := &cutLog{Handler: testLogger(t).Handler()}
	m := NewMain(cfg, slog.New(logs))
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		m.Close(ctx)
	})
	base := htBase(m)
	before := scrape(t, base)

	req, _ := http.NewRequest(http.MethodGet, base+"/api/stream", nil)
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", err, resp)
	}
	defer resp.Body.Close()
	events := sseEvents(resp.Body)

	// Plain TCP with one too-long line, a connect-per-message device, UDP, and
	// an acknowledged device.
	d := dialFrom(t, "127.0.0.61", m.tcpAddr())
	defer d.Close()
	io.WriteString(d, strings.Join(counters(1, 3), "")+strings.Repeat("9", 600)+"\n"+strings.Join(counters(4, 5), ""))
	if err := sendOnce("127.0.0.62", m.tcpAddr(), "temp=21.5;room=lab\n"); err != nil {
		t.Fatal(err)
	}
	to, err := net.ResolveUDPAddr("udp", m.udpAddr())
	if err != nil {
		t.Fatal(err)
	}
	u, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.63")}, to)
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("7\x00\x00\x00"))
	u.Close()
	ack, ok := dialAck(t, m.tcpAddr(), "INLET/1 id=probe-7 boot=b1\n")
	if ok != "INLET/1 OK last=0" {
		t.Fatalf("hello: %q", ok)
	}
	ack.send("1 t=1\n", "2 t=2\n", "4 t=4\n")
	ack.ackedUpTo(4)
	waitCommitted(t, m, 5+1+1+3)

	// The stream delivers each committed message as its export record.
	export, code := runCmd(t, "export", "--db", cfg.DB)
	if code != 0 {
		t.Fatal("inlet export failed")
	}
	lines := strings.Split(strings.TrimSuffix(export, "\n"), "\n")
	for i, want := range lines {
		select {
		case ev := <-events:
			if ev[1] != want || !strings.HasPrefix(want, `{"id":`+ev[0]+",") {
				t.Errorf("stream event %d: id %s data %s, want the export record %s", i, ev[0], ev[1], want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("stream: %d events of %d", i, len(lines))
		}
	}
	// /api/messages is inlet export, in both formats.
	if _, b := htGet(t, base+"/api/messages?format=ndjson"); string(b) != export {
		t.Errorf("/api/messages?format=ndjson differs from inlet export:\n%s\nwant\n%s", b, export)
	}
	csvExport, _ := runCmd(t, "export", "--db", cfg.DB, "--format", "csv")
	if _, b := htGet(t, base+"/api/messages?format=csv"); string(b) != csvExport {
		t.Errorf("/api/messages?format=csv differs from inlet export --format csv")
	}
	// /api/devices has the record of inlet devices --format json.
	var api, cli []map[string]json.RawMessage
	htJSON(t, base+"/api/devices", &api)
	out, code := runCmd(t, "devices", "--db", cfg.DB, "--format", "json")
	if code != 0 || json.Unmarshal([]byte(out), &cli) != nil || len(cli) != 4 || len(api) != 4 {
		t.Fatalf("inlet devices (%d): %s\nAPI: %v", code, out, api)
	}
	for i, c := range cli {
		for k, v := range c {
			if got := api[i][k]; !bytes.Equal(compactJSON(got), compactJSON(v)) {
				t.Errorf("device %s: %s = %s in the API, %s in inlet devices", c["device"], k, got, v)
			}
		}
	}
	// The listeners' counters reach the overview and the metrics.
	var ov struct {
		Received map[string]int64  `json:"received"`
		Rejected map[string]int64  `json:"rejected"`
		Listen   map[string]string `json:"listen"`
	}
	// (A listener counts what it queued after queueing it: the commit may come first.)
	waitFor(t, "the received counters", 5*time.Second, func() bool {
		return m.Stats.MessagesTCP.Load() == 9 && m.Stats.MessagesUDP.Load() == 1
	})
	htJSON(t, base+"/api/overview", &ov)
	if ov.Received["tcp"] != 9 || ov.Received["udp"] != 1 || ov.Rejected["too_long"] != 1 ||
		ov.Listen["tcp"] != m.tcpAddr() || ov.Listen["udp"] != m.udpAddr() {
		t.Errorf("overview: received %v rejected %v listen %v (bound %s, %s)", ov.Received, ov.Rejected, ov.Listen, m.tcpAddr(), m.udpAddr())
	}
	after := scrape(t, base)
	for k, want := range map[string]float64{
		`inlet_messages_received_total{transport="tcp"}`: 9,
		`inlet_messages_received_total{transport="udp"}`: 1,
		`inlet_messages_committed_total`:                 10,
		`inlet_rejected_total{reason="too_long"}`:        1,
		`inlet_acked_connections_total`:                  1,
		`inlet_stream_subscribers`:                       1,
	} {
		if got := after[k] - before[k]; got != want {
			t.Errorf("%s rose by %v, want %v", k, got, want)
		}
	}
	if after[`inlet_ack_latency_seconds_count`] < 1 {
		t.Errorf("no ack latency recorded")
	}

	// Shutdown with an open stream, a stalled stream and a stalled export:
	// streams end at once (their write timeout is 10 s), the export (30 s) is
	// cut after a moment, when the HTTP server stops waiting for it.
	c := dialFrom(t, "127.0.0.90", m.tcpAddr())
	w := bufio.NewWriterSize(c, 64<<10)
	pad := strings.Repeat("x", 400)
	for i := range 30000 { // ~14 MB of events and NDJSON: more than the socket buffers hold
		fmt.Fprintf(w, "%d %s\n", i, pad)
	}
	w.Flush()
	c.Close()
	waitFor(t, "30000 more stored", 60*time.Second, func() bool { return m.Stats.Committed.Load() >= 30010 })
	stalledGET(t, m.ReadyInfo().HTTP, "/api/stream?after_id=0")
	stalledGET(t, m.ReadyInfo().HTTP, "/api/messages?format=ndjson")
	waitFor(t, "the stalled stream", 20*time.Second, func() bool { return m.Stats.StreamSubscribers.Load() == 2 })
	time.Sleep(300 * time.Millisecond) // the server writes until the buffers are full
	streamsEnded := make(chan time.Time, 1)
	go func() {
		for m.Stats.StreamSubscribers.Load() > 0 {
			time.Sleep(time.Millisecond)
		}
		streamsEnded <- time.Now()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := m.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("close took %s with a stalled stream and a stalled export", d)
	}
	cut := logs.cutAt()
	if cut.IsZero() {
		t.Errorf("the stalled export was not cut at shutdown: it proves nothing here")
	}
	select {
	case ended := <-streamsEnded:
		if !ended.Before(cut) {
			t.Errorf("the streams ended %s after the stalled export was cut: they must end at once at shutdown, not when the server gives up on its requests", ended.Sub(cut))
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the streams did not end at shutdown")
	}
	done := make(chan struct{})
	go func() {
		for range events {
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("the open stream did not end at shutdown")
	}
}

// cutLog records when the server gave up waiting for HTTP requests at shutdown.
type cutLog struct {
	slog.Handler
	mu  sync.Mutex
	cut time.Time
}

func (c *cutLog) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "http: requests still open at shutdown") {
		c.mu.Lock()
		c.cut = time.Now()
		c.mu.Unlock()
	}
	return c.Handler.Handle(ctx, r)
}

func (c *cutLog) cutAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

// ---- the token flags (the real binary) -------------------------------------------

func envWithout(name string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func TestHTTPRefusesOpenAddressWithoutToken(t *testing.T) {
	bin := inletBinary(t)
	for _, addr := range []string{"0.0.0.0:0", ":0"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, bin, "serve", "--tcp", "127.0.0.1:0", "--udp", "", "--http", addr,
			"--db", filepath.Join(t.TempDir(), "x.db"))
		cmd.Env = envWithout("INLET_HTTP_TOKEN")
		out, err := cmd.CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 { // a usage error (docs/cli.md)
			t.Errorf("--http %s without a token: %v, want exit status 2\n%s", addr, err, out)
		}
		if !bytes.Contains(out, []byte("--http-token")) {
			t.Errorf("--http %s without a token: output does not name --http-token:\n%s", addr, out)
		}
	}
}

// The token comes from --http-token or INLET_HTTP_TOKEN (the flag wins), and
// a session signed in on one run stays valid after a restart with the same
// token.
func TestHTTPToken(t *testing.T) {
	t.Setenv("INLET_HTTP_TOKEN", "from-env")
	db := filepath.Join(t.TempDir(), "inlet.db")
	check := func(base string, cases ...any) {
		t.Helper()
		for i := 0; i+2 < len(cases); i += 3 {
			path, hdr, code := cases[i].(string), cases[i+1].([]string), cases[i+2].(int)
			if resp, b := htGet(t, base+path, hdr...); resp.StatusCode != code {
				t.Errorf("GET %s %v: %s, want %d: %.200s", path, hdr, resp.Status, code, b)
			}
		}
	}
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db)
	check("http://"+srv.ready.HTTP,
		"/healthz", []string(nil), 200,
		"/api/devices", []string(nil), 401,
		"/api/devices", []string{"Authorization", "Bearer from-env"}, 200,
		"/metrics", []string{"Authorization", "Bearer wrong"}, 401,
		"/metrics", []string{"Authorization", "Bearer from-env"}, 200)
	// Sign in.
	resp, err := htTransport.RoundTrip(mustPostForm(t, "http://"+srv.ready.HTTP+"/login", "token=from-env&next=/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "inlet_session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		t.Fatalf("sign-in: %s, no session cookie", resp.Status)
	}
	srv.stop(t, syscall.SIGTERM)

	srv = startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--http-token", "s3cret", "--db", db)
	check("http://"+srv.ready.HTTP,
		"/api/devices", []string{"Authorization", "Bearer from-env"}, 401,
		"/api/devices", []string{"Authorization", "Bearer s3cret"}, 200,
		"/api/devices", []string{"Cookie", cookie}, 401)
	srv.stop(t, syscall.SIGTERM)

	srv = startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db)
	check("http://"+srv.ready.HTTP, "/api/devices", []string{"Cookie", cookie}, 200)
}

func mustPostForm(t *testing.T, u, form string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}
