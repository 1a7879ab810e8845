package main

// Tests of the HTTP surface (docs/http.md is the contract) against a real server
// fed over real TCP and UDP sockets on loopback.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/httpapi"
)

// ---- helpers -------------------------------------------------------------

// htTransport sends the tests' plain requests.
var htTransport = &http.Transport{ResponseHeaderTimeout: 15 * time.Second}

func htBase(m *Main) string {
	if m.ReadyInfo().HTTP == "" {
		panic("test server has no HTTP address")
	}
	return "http://" + m.ReadyInfo().HTTP
}

// htDo sends one request and returns the response with its whole body.
func htDo(t testing.TB, method, u string, hdr http.Header, body io.Reader) (*http.Response, []byte) {
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
	// The transport itself: no redirects followed, and a Location a browser
	// would misread is returned as sent rather than refused.
	resp, err := htTransport.RoundTrip(req)
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

// htGet is a GET with optional header name/value pairs.
func htGet(t testing.TB, u string, kv ...string) (*http.Response, []byte) {
	t.Helper()
	hdr := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		hdr.Add(kv[i], kv[i+1])
	}
	return htDo(t, http.MethodGet, u, hdr, nil)
}

// htJSON GETs u, wants 200 and JSON, and decodes the answer into v.
func htJSON(t testing.TB, u string, v any, kv ...string) []byte {
	t.Helper()
	resp, b := htGet(t, u, kv...)
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

// htWantError wants status code and a JSON {"error": "..."} answer that
// mentions what.
func htWantError(t testing.TB, u string, code int, what string) {
	t.Helper()
	resp, b := htGet(t, u)
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

// htUDP sends tutorial datagrams (NUL-padded to 10 bytes) from src.
func htUDP(t testing.TB, src, addr string, payloads ...string) {
	t.Helper()
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, to)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range payloads {
		b := []byte(p)
		for len(b) < 10 {
			b = append(b, 0)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
}

// htStore reads every stored message matching q from the test database.
func htStore(t testing.TB, db string, q inlet.Query) []inlet.Stored { return messages(t, db, q) }

func ids(ms []inlet.Stored) []int64 {
	out := make([]int64, len(ms))
	for i := range ms {
		out[i] = ms[i].ID
	}
	return out
}

// apiMessage is the NDJSON record of docs/http.md and inlet export.
type apiMessage struct {
	ID            int64           `json:"id"`
	ReceivedAt    string          `json:"received_at"`
	Device        string          `json:"device"`
	Transport     string          `json:"transport"`
	Remote        string          `json:"remote"`
	Boot          *string         `json:"boot"`
	Seq           *int64          `json:"seq"`
	Payload       *string         `json:"payload"`
	PayloadBase64 *string         `json:"payload_base64"`
	Fields        json.RawMessage `json:"fields"`
}

var nineDigits = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)

// ---- SSE ----------------------------------------------------------------

type sseEvent struct {
	id, event, data string
}

// sseStream reads server-sent events in the background; every wait is bounded.
type sseStream struct {
	t      testing.TB
	resp   *http.Response
	events chan sseEvent
	done   chan struct{}
	cancel context.CancelFunc

	mu    sync.Mutex
	retry string
	pings int
	err   error // why the stream ended
}

// openSSE opens u as an event stream; kv are header name/value pairs.
func openSSE(t testing.TB, u string, kv ...string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	tr := &http.Transport{ResponseHeaderTimeout: 10 * time.Second, DisableKeepAlives: true}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("stream %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		cancel()
		t.Fatalf("stream %s: %s: %s", u, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("stream %s: Content-Type %q", u, ct)
	}
	s := &sseStream{t: t, resp: resp, events: make(chan sseEvent, 1<<16), done: make(chan struct{}), cancel: cancel}
	go s.read()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) read() {
	defer close(s.done)
	defer close(s.events)
	err := parseSSE(s.resp.Body, func(ev sseEvent) { s.events <- ev }, func(field, value string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch field {
		case "retry":
			s.retry = value
		case "ping":
			s.pings++
		}
	})
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// parseSSE parses an event stream (the HTML spec's rules, minus BOM handling)
// until r ends: each dispatched event goes to emit; retry and comments to meta.
func parseSSE(r io.Reader, emit func(sseEvent), meta func(field, value string)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var ev sseEvent
	var data []string
	hasData := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				return io.EOF
			}
			return err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if hasData || ev.event != "" {
				ev.data = strings.Join(data, "\n")
				emit(ev)
			}
			ev, data, hasData = sseEvent{}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			meta("ping", strings.TrimSpace(line[1:]))
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.id = value
		case "event":
			ev.event = value
		case "data":
			data = append(data, value)
			hasData = true
		case "retry":
			meta("retry", value)
		}
	}
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("stream reader did not stop")
	}
}

// next waits up to d for the next event.
func (s *sseStream) next(d time.Duration) sseEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.mu.Lock()
			err := s.err
			s.mu.Unlock()
			s.t.Fatalf("stream ended: %v", err)
		}
		return ev
	case <-time.After(d):
		s.t.Fatalf("no stream event within %s", d)
	}
	panic("unreachable")
}

// take reads n events, each within 10 s.
func (s *sseStream) take(n int) []sseEvent {
	s.t.Helper()
	out := make([]sseEvent, 0, n)
	for range n {
		out = append(out, s.next(10*time.Second))
	}
	return out
}

// none wants no event for d.
func (s *sseStream) none(d time.Duration) {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if ok {
			s.t.Errorf("unexpected stream event id=%s data=%s", ev.id, ev.data)
		}
	case <-time.After(d):
	}
}

// checkEvents checks that each event is a stored message: id = the message id,
// data = its NDJSON record as inlet export writes it, ids strictly increasing.
func checkEvents(t testing.TB, evs []sseEvent, export map[int64]string) []int64 {
	t.Helper()
	var out []int64
	for _, ev := range evs {
		if ev.event != "" {
			t.Errorf("event %s has type %q, want a plain message event", ev.id, ev.event)
		}
		id, err := strconv.ParseInt(ev.id, 10, 64)
		if err != nil {
			t.Fatalf("event id %q: %v", ev.id, err)
		}
		var m apiMessage
		if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
			t.Fatalf("event %d data %q: %v", id, ev.data, err)
		}
		if m.ID != id {
			t.Errorf("event id %d carries message %d", id, m.ID)
		}
		if want, ok := export[id]; ok && want != ev.data {
			t.Errorf("event %d data\n%s\nwant the export record\n%s", id, ev.data, want)
		} else if !ok && export != nil {
			t.Errorf("event %d: no such message in the store", id)
		}
		if len(out) > 0 && id <= out[len(out)-1] {
			t.Errorf("event ids not increasing: %d after %d", id, out[len(out)-1])
		}
		out = append(out, id)
	}
	return out
}

// exportByID runs inlet export (NDJSON) and indexes its lines by id.
func exportByID(t *testing.T, db string, args ...string) map[int64]string {
	t.Helper()
	out, code := runCmd(t, append([]string{"export", "--db", db}, args...)...)
	if code != 0 {
		t.Fatalf("inlet export failed")
	}
	m := make(map[int64]string)
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		var r apiMessage
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		m[r.ID] = l
	}
	return m
}

// ---- metrics ---------------------------------------------------------------

// scrape reads /metrics into "name{labels}" → value, exactly as printed.
func scrape(t testing.TB, base string, kv ...string) map[string]float64 {
	t.Helper()
	resp, b := htGet(t, base+"/metrics", kv...)
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

// ---- /api/devices ------------------------------------------------------------

type apiBoot struct {
	Boot          string     `json:"boot"`
	Messages      int64      `json:"messages"`
	LastSeq       int64      `json:"last_seq"`
	Durable       int64      `json:"durable"`
	Missing       int64      `json:"missing"`
	MissingRanges [][2]int64 `json:"missing_ranges"`
	FirstSeen     string     `json:"first_seen"`
	LastSeen      string     `json:"last_seen"`
}

type apiDevice struct {
	Device        string          `json:"device"`
	Messages      int64           `json:"messages"`
	FirstSeen     string          `json:"first_seen"`
	LastSeen      string          `json:"last_seen"`
	LastCounter   *int64          `json:"last_counter"`
	Gaps          int64           `json:"gaps"`
	Missing       int64           `json:"missing"`
	Duplicates    int64           `json:"duplicates"`
	Resets        int64           `json:"resets"`
	Boots         []apiBoot       `json:"boots"`
	Lost          int64           `json:"lost"`
	Clean         bool            `json:"clean"`
	LastPayload   *string         `json:"last_payload"`
	LastFields    json.RawMessage `json:"last_fields"`
	RatePerMinute float64         `json:"rate_per_minute"`
	AgeSeconds    float64         `json:"age_seconds"`
}

var deviceKeys = []string{"device", "messages", "first_seen", "last_seen", "last_counter", "gaps", "missing",
	"duplicates", "resets", "boots", "lost", "clean", "last_payload", "last_fields", "rate_per_minute", "age_seconds"}

func TestHTTPDevices(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	base := htBase(m)
	tcp := m.tcpAddr()

	// Before any traffic: an empty array, not null.
	resp, b := htGet(t, base+"/api/devices")
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("no devices: %s %q, want 200 []", resp.Status, b)
	}

	// A: a counter on one connection: 1..5, a gap (6, 7), 8..20, then a reset to 1..3.
	a := htDial(t, "127.0.0.61", tcp)
	a.send(counters(1, 5)...)
	a.send(counters(8, 20)...)
	a.send(counters(1, 3)...)
	// B: the tutorial sketch, one connection per reading, clean.
	waitCommitted(t, m, 21)
	committed := int64(21)
	for n := 1; n <= 6; n++ {
		if err := sendOnce("127.0.0.62", tcp, fmt.Sprintf("%d\r\n", n)); err != nil {
			t.Fatal(err)
		}
		committed++
		waitCommitted(t, m, committed) // in order, so no late arrivals
	}
	// C: key=value readings; E: a binary payload; U: a UDP tutorial datagram.
	if err := sendOnce("127.0.0.63", tcp, "temp=21.5;room=lab\n"); err != nil {
		t.Fatal(err)
	}
	if err := sendOnce("127.0.0.64", tcp, "\xff\xfebin\n"); err != nil {
		t.Fatal(err)
	}
	htUDP(t, "127.0.0.65", m.udpAddr(), "5")
	committed += 3
	// An acknowledged device: boot b1 with seqs 1,2,3,6 (4 and 5 missing) and a
	// resend of 2; then a reboot, b2, with seq 1.
	ack, ok := dialAck(t, tcp, "INLET/1 id=probe-7 boot=b1\n")
	if ok != "INLET/1 OK last=0" {
		t.Fatalf("hello: %q", ok)
	}
	ack.send("1 t=1\n", "2 t=2\n", "3 t=3\n", "6 t=6\n")
	ack.ackedUpTo(6)
	ack.send("2 t=2\n")
	ack.ackedUpTo(2)
	ack.c.Close()
	ack2, ok := dialAck(t, tcp, "INLET/1 id=probe-7 boot=b2\n")
	if ok != "INLET/1 OK last=0" {
		t.Fatalf("hello b2: %q", ok)
	}
	ack2.send("1 t=100\n")
	ack2.ackedUpTo(1)
	committed += 5
	waitCommitted(t, m, committed)
	// The live figures follow the commit hook, which runs just after the commit
	// (and its ACKs): give it a moment.
	waitFor(t, "live figures of the last commit", 5*time.Second, func() bool {
		var ds []apiDevice
		htJSON(t, base+"/api/devices", &ds)
		for _, d := range ds {
			if d.Device == "probe-7" && d.LastPayload != nil && *d.LastPayload == "t=100" {
				return true
			}
		}
		return false
	})

	var devs []apiDevice
	raw := htJSON(t, base+"/api/devices", &devs)
	var rawDevs []map[string]json.RawMessage
	json.Unmarshal(raw, &rawDevs)
	for _, rd := range rawDevs {
		for _, k := range deviceKeys {
			if _, ok := rd[k]; !ok {
				t.Errorf("device %s: no %q member", rd["device"], k)
			}
		}
	}
	if len(devs) != 6 {
		t.Fatalf("%d devices, want 6: %s", len(devs), raw)
	}
	if !slices.IsSortedFunc(devs, func(x, y apiDevice) int { return strings.Compare(x.Device, y.Device) }) {
		t.Errorf("devices not ordered by device: %s", raw)
	}
	by := make(map[string]apiDevice)
	for i, d := range devs {
		by[d.Device] = d
		if !nineDigits.MatchString(d.FirstSeen) || !nineDigits.MatchString(d.LastSeen) {
			t.Errorf("%s: times %q %q, want RFC 3339 UTC with nine digits", d.Device, d.FirstSeen, d.LastSeen)
		}
		if d.RatePerMinute <= 0 {
			t.Errorf("%s: rate_per_minute %v, want > 0 right after its traffic", d.Device, d.RatePerMinute)
		}
		if d.AgeSeconds < 0 || d.AgeSeconds > 60 {
			t.Errorf("%s: age_seconds %v", d.Device, d.AgeSeconds)
		}
		if d.Lost != d.Missing {
			t.Errorf("%s: lost %d, missing %d: lost is missing counter values plus missing seqs", d.Device, d.Lost, d.Missing)
		}
		wantClean := d.Missing == 0 && d.Gaps == 0 && d.Duplicates == 0 && d.Resets == 0
		if d.Clean != wantClean {
			t.Errorf("%s: clean %v with %+v", d.Device, d.Clean, d)
		}
		if d.Device != "probe-7" && string(rawDevs[i]["boots"]) != "[]" {
			t.Errorf("%s: boots %s, want [] for a plain device", d.Device, rawDevs[i]["boots"])
		}
	}
	i64 := func(p *int64) string {
		if p == nil {
			return "null"
		}
		return strconv.FormatInt(*p, 10)
	}
	str := func(p *string) string {
		if p == nil {
			return "null"
		}
		return strconv.Quote(*p)
	}
	fieldsEq := func(dev, got json.RawMessage, want string) {
		t.Helper()
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Errorf("%s: last_fields %s: %v", dev, got, err)
			return
		}
		json.Unmarshal([]byte(want), &w)
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("%s: last_fields %s, want %s", dev, got, want)
		}
	}
	for _, c := range []struct {
		dev                         string
		msgs                        int64
		last                        string
		gaps, missing, dups, resets int64
		clean                       bool
		payload, fields             string
	}{
		{"127.0.0.61", 21, "3", 1, 2, 0, 1, false, `"3"`, `{"value":3}`},
		{"127.0.0.62", 6, "6", 0, 0, 0, 0, true, `"6"`, `{"value":6}`},
		{"127.0.0.63", 1, "null", 0, 0, 0, 0, true, `"temp=21.5;room=lab"`, `{"temp":21.5,"room":"lab"}`},
		{"127.0.0.64", 1, "null", 0, 0, 0, 0, true, `null`, `null`},
		{"127.0.0.65", 1, "5", 0, 0, 0, 0, true, `"5"`, `{"value":5}`},
		{"probe-7", 5, "null", 1, 2, 1, 1, false, `"t=100"`, `{"t":100}`},
	} {
		d, ok := by[c.dev]
		if !ok {
			t.Errorf("device %s missing from %s", c.dev, raw)
			continue
		}
		if d.Messages != c.msgs || i64(d.LastCounter) != c.last || d.Gaps != c.gaps || d.Missing != c.missing ||
			d.Duplicates != c.dups || d.Resets != c.resets || d.Clean != c.clean || d.Lost != c.missing {
			t.Errorf("%s: messages %d last_counter %s gaps %d missing %d duplicates %d resets %d lost %d clean %v;\n"+
				"want %d %s %d %d %d %d %d %v", c.dev, d.Messages, i64(d.LastCounter), d.Gaps, d.Missing, d.Duplicates,
				d.Resets, d.Lost, d.Clean, c.msgs, c.last, c.gaps, c.missing, c.dups, c.resets, c.missing, c.clean)
		}
		if str(d.LastPayload) != c.payload {
			t.Errorf("%s: last_payload %s, want %s", c.dev, str(d.LastPayload), c.payload)
		}
		fieldsEq(json.RawMessage(c.dev), d.LastFields, c.fields)
	}

	// The acknowledged device's boots.
	p := by["probe-7"]
	if len(p.Boots) != 2 {
		t.Fatalf("probe-7 boots %+v, want b1 and b2", p.Boots)
	}
	boots := map[string]apiBoot{p.Boots[0].Boot: p.Boots[0], p.Boots[1].Boot: p.Boots[1]}
	b1, b2 := boots["b1"], boots["b2"]
	if b1.Messages != 4 || b1.LastSeq != 6 || b1.Durable != 3 || b1.Missing != 2 ||
		fmt.Sprint(b1.MissingRanges) != "[[4 5]]" || !nineDigits.MatchString(b1.FirstSeen) || !nineDigits.MatchString(b1.LastSeen) {
		t.Errorf("boot b1 %+v, want 4 messages, last_seq 6, durable 3, missing 2 [[4 5]]", b1)
	}
	if b2.Messages != 1 || b2.LastSeq != 1 || b2.Durable != 1 || b2.Missing != 0 || b2.MissingRanges == nil || len(b2.MissingRanges) != 0 {
		t.Errorf("boot b2 %+v, want 1 message, last_seq 1, durable 1, missing_ranges []", b2)
	}

	// The same record as inlet devices --format json (docs/cli.md), plus live figures.
	out, code := runCmd(t, "devices", "--db", cfg.DB, "--format", "json")
	if code != 0 {
		t.Fatal("inlet devices failed")
	}
	var cli []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &cli); err != nil {
		t.Fatalf("inlet devices: %v\n%s", err, out)
	}
	if len(cli) != len(rawDevs) {
		t.Fatalf("inlet devices lists %d, the API %d", len(cli), len(rawDevs))
	}
	for i, c := range cli {
		for k, v := range c {
			got := rawDevs[i][k]
			if !bytes.Equal(compactJSON(got), compactJSON(v)) {
				t.Errorf("device %s: %s = %s in the API, %s in inlet devices", c["device"], k, got, v)
			}
		}
	}
}

// After a restart on the same database, last_payload and last_fields come
// from the store; rates start again from zero.
func TestHTTPDevicesAfterRestart(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	a := htDial(t, "127.0.0.66", m.tcpAddr())
	a.send("1\r\n", "2\r\n", "temp=3.5\n")
	if err := sendOnce("127.0.0.67", m.tcpAddr(), "\xff\n"); err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, m, 4)
	a.c.Close()
	MustClose(t, m)

	m = MustRun(t, cfg)
	var devs []apiDevice
	raw := htJSON(t, htBase(m)+"/api/devices", &devs)
	if len(devs) != 2 {
		t.Fatalf("devices after restart: %s", raw)
	}
	d, e := devs[0], devs[1]
	if d.Device != "127.0.0.66" || d.Messages != 3 || d.LastPayload == nil || *d.LastPayload != "temp=3.5" ||
		string(compactJSON(d.LastFields)) != `{"temp":3.5}` || d.RatePerMinute != 0 || d.LastCounter == nil || *d.LastCounter != 2 {
		t.Errorf("device after restart: %+v (last_payload %v)", d, d.LastPayload)
	}
	if e.LastPayload != nil || string(e.LastFields) != "null" {
		t.Errorf("binary device after restart: last_payload %v last_fields %s, want null, null", e.LastPayload, e.LastFields)
	}
}

func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// ---- /api/messages -----------------------------------------------------------

func TestHTTPMessages(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	base := htBase(m)
	tcp := m.tcpAddr()
	const A, B, U, D = "127.0.0.71", "127.0.0.72", "127.0.0.73", "127.0.0.74"

	a := htDial(t, A, tcp)
	t0 := time.Now()
	a.send(counters(1, 4)...)
	htUDP(t, U, m.udpAddr(), "1", "2")
	waitCommitted(t, m, 6)
	t1 := time.Now()
	time.Sleep(2 * time.Millisecond)
	a.send(counters(5, 7)...)
	htDial(t, B, tcp).send(counters(1, 3)...)
	waitCommitted(t, m, 12)
	t2 := time.Now()
	time.Sleep(2 * time.Millisecond)
	a.send(counters(8, 10)...)
	htDial(t, D, tcp).send(counters(1, 1100)...)
	const total = 6 + 6 + 3 + 1100
	waitCommitted(t, m, total)

	all := htStore(t, cfg.DB, inlet.Query{})
	if len(all) != total {
		t.Fatalf("store holds %d, want %d", len(all), total)
	}
	exportOut, code := runCmd(t, "export", "--db", cfg.DB)
	if code != 0 {
		t.Fatal("export failed")
	}
	exportLines := strings.SplitAfter(exportOut, "\n")
	exportLines = exportLines[:len(exportLines)-1]
	get := func(q string) []apiMessage {
		t.Helper()
		var out []apiMessage
		b := htJSON(t, base+"/api/messages?"+q, &out)
		if out == nil {
			t.Errorf("?%s: %s, want an array", q, b)
		}
		return out
	}
	msgIDs := func(ms []apiMessage) []int64 {
		out := make([]int64, len(ms))
		for i := range ms {
			out[i] = ms[i].ID
		}
		return out
	}
	filter := func(f func(*inlet.Stored) bool) []int64 {
		var out []int64
		for i := range all {
			if f(&all[i]) {
				out = append(out, all[i].ID)
			}
		}
		if out == nil {
			out = []int64{}
		}
		return out
	}
	wantIDs := func(what string, got []apiMessage, want []int64) {
		t.Helper()
		g := msgIDs(got)
		if !slices.Equal(g, want) {
			t.Errorf("%s: ids %v, want %v", what, g, want)
		}
	}

	// JSON: the default limit is 1000, oldest first; each element is the export record.
	first := get("")
	wantIDs("default", first, ids(all[:1000]))
	for i, r := range first[:20] {
		b, _ := json.Marshal(r)
		var want apiMessage
		json.Unmarshal([]byte(exportLines[i]), &want)
		w, _ := json.Marshal(want)
		if !bytes.Equal(b, w) {
			t.Errorf("json element %d\n%s\nwant the export record\n%s", i, b, w)
		}
	}
	wantIDs("limit=0", get("limit=0"), ids(all))

	// Filters.
	wantIDs("device", get("device="+A), filter(func(s *inlet.Stored) bool { return s.Device == A }))
	for i, r := range get("device=" + A) {
		if r.Payload == nil || *r.Payload != strconv.Itoa(i+1) || r.Transport != "tcp" || r.Boot != nil || r.Seq != nil {
			t.Errorf("device A message %d: %+v", i, r)
		}
	}
	udp := get("device=" + U)
	if len(udp) != 2 || udp[0].Transport != "udp" || *udp[0].Payload != "1" || *udp[1].Payload != "2" {
		t.Errorf("UDP device: %+v", udp)
	}
	ts := func(x time.Time) string { return url.QueryEscape(x.UTC().Format(time.RFC3339Nano)) }
	wantIDs("until=t1", get("until="+ts(t1)), filter(func(s *inlet.Stored) bool { return s.ReceivedAt < t1.UnixNano() }))
	wantIDs("since=t1&until=t2", get("since="+ts(t1)+"&until="+ts(t2)),
		filter(func(s *inlet.Stored) bool { return s.ReceivedAt >= t1.UnixNano() && s.ReceivedAt < t2.UnixNano() }))
	if n := len(get("until=" + ts(t1))); n != 6 {
		t.Errorf("until=t1: %d messages, want the 6 sent before it", n)
	}
	if n := len(get("since=" + ts(t1) + "&until=" + ts(t2))); n != 6 {
		t.Errorf("since=t1&until=t2: %d messages, want the 6 sent between", n)
	}
	wantIDs("device+since", get("device="+A+"&since="+ts(t2)), filter(func(s *inlet.Stored) bool {
		return s.Device == A && s.ReceivedAt >= t2.UnixNano()
	}))
	// since is inclusive, until exclusive: a message's own received_at.
	pivot := all[7]
	at := url.QueryEscape(time.Unix(0, pivot.ReceivedAt).UTC().Format(time.RFC3339Nano))
	if got := get("since=" + at + "&limit=0"); len(got) == 0 || got[0].ID > pivot.ID ||
		!slices.Contains(msgIDs(got), pivot.ID) {
		t.Errorf("since=its own time does not include message %d", pivot.ID)
	}
	if got := get("until=" + at + "&limit=0"); slices.Contains(msgIDs(got), pivot.ID) {
		t.Errorf("until=its own time includes message %d", pivot.ID)
	}
	// Other time spellings: duration, unix seconds, date.
	wantIDs("since=1h", get("since=1h&limit=0"), ids(all))
	wantIDs("since=unix", get(fmt.Sprintf("since=%d&limit=0", t0.Unix()-1)), ids(all))
	wantIDs("since=tomorrow", get("since="+time.Now().UTC().Add(48*time.Hour).Format("2006-01-02")), []int64{})
	wantIDs("until=yesterday", get("until="+time.Now().UTC().Add(-48*time.Hour).Format("2006-01-02")), []int64{})
	wantIDs("unknown device", get("device=10.9.9.9"), []int64{})

	// Paging walks every message once, in id order.
	var walked []int64
	after, pages := int64(0), 0
	for {
		page := get(fmt.Sprintf("limit=97&after_id=%d", after))
		pages++
		if len(page) > 97 {
			t.Fatalf("page of %d with limit=97", len(page))
		}
		walked = append(walked, msgIDs(page)...)
		if len(page) < 97 {
			break
		}
		after = page[len(page)-1].ID
		if pages > 100 {
			t.Fatal("paging does not end")
		}
	}
	if !slices.Equal(walked, ids(all)) {
		t.Errorf("paging walked %d ids, want the %d stored, once each, in order", len(walked), len(all))
	}
	// Paging one device.
	walked, after = nil, 0
	for {
		page := get(fmt.Sprintf("device=%s&limit=4&after_id=%d", A, after))
		walked = append(walked, msgIDs(page)...)
		if len(page) < 4 {
			break
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(walked, filter(func(s *inlet.Stored) bool { return s.Device == A })) {
		t.Errorf("paging device A: %v", walked)
	}

	// last=1: the newest limit messages, still in id order.
	wantIDs("last=1&limit=5", get("last=1&limit=5"), ids(all[len(all)-5:]))
	lastA := get("device=" + A + "&limit=3&last=1")
	if len(lastA) != 3 || *lastA[0].Payload != "8" || *lastA[2].Payload != "10" {
		t.Errorf("device A last 3: %+v", lastA)
	}
	wantIDs("last=1 default limit", get("last=1"), ids(all[len(all)-1000:]))

	// NDJSON: exactly inlet export's output.
	resp, b := htGet(t, base+"/api/messages?format=ndjson")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
		t.Errorf("ndjson: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if string(b) != exportOut {
		t.Errorf("ndjson (%d bytes) differs from inlet export (%d bytes)", len(b), len(exportOut))
	}
	devExport, _ := runCmd(t, "export", "--db", cfg.DB, "--device", B)
	if _, b := htGet(t, base+"/api/messages?format=ndjson&device="+B); string(b) != devExport {
		t.Errorf("ndjson device B:\n%s\nwant\n%s", b, devExport)
	}
	if _, b := htGet(t, base+"/api/messages?format=ndjson&device=nobody"); len(b) != 0 {
		t.Errorf("ndjson of nothing: %q", b)
	}
	if _, b := htGet(t, base+"/api/messages?format=ndjson&limit=2"); string(b) != strings.Join(exportLines[:2], "") {
		t.Errorf("ndjson limit=2: %q", b)
	}

	// CSV: header plus rows, as inlet export --format csv.
	csvExport, _ := runCmd(t, "export", "--db", cfg.DB, "--format", "csv")
	resp, b = htGet(t, base+"/api/messages?format=csv")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("csv: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	if len(rows) != total+1 || strings.Join(rows[0], ",") != "id,received_at,device,transport,remote,boot,seq,payload,payload_base64,fields" {
		t.Errorf("csv: %d rows, header %q", len(rows), rows[0])
	}
	if string(b) != csvExport {
		t.Errorf("csv differs from inlet export --format csv")
	}
	for i, r := range rows[1:] {
		if r[0] != strconv.FormatInt(all[i].ID, 10) || r[2] != all[i].Device {
			t.Errorf("csv row %d: %q", i, r)
			break
		}
	}
	if _, b := htGet(t, base+"/api/messages?format=csv&device=nobody"); strings.TrimSpace(string(b)) != strings.Join(rows[0], ",") {
		t.Errorf("csv of nothing: %q, want the header", b)
	}

	// Bad parameters: 400 with a JSON error naming the parameter.
	for q, what := range map[string]string{
		"since=yesterday":   "since",
		"until=soon":        "until",
		"after_id=-1":       "after_id",
		"after_id=x":        "after_id",
		"limit=-5":          "limit",
		"limit=many":        "limit",
		"format=xml":        "format",
		"last=maybe":        "last",
		"since=2026-13-45":  "since",
		"device=A&since=1x": "since",
	} {
		htWantError(t, base+"/api/messages?"+q, http.StatusBadRequest, what)
	}
	htWantError(t, base+"/api/x", http.StatusNotFound, "")
	htWantError(t, base+"/api/messages/extra", http.StatusNotFound, "")
}

// ---- /api/series -------------------------------------------------------------

type apiSeries struct {
	Device   string                `json:"device"`
	Fields   []string              `json:"fields"`
	T        []float64             `json:"t"`
	Series   map[string][]*float64 `json:"series"`
	Rows     int64                 `json:"rows"`
	Bucketed bool                  `json:"bucketed"`
	LastID   int64                 `json:"last_id"`
	Markers  []struct {
		T       float64 `json:"t"`
		Kind    string  `json:"kind"`
		Missing int64   `json:"missing"`
		From    int64   `json:"from"`
		To      int64   `json:"to"`
	} `json:"markers"`
}

func (s *apiSeries) check(t testing.TB) {
	t.Helper()
	for _, f := range s.Fields {
		if len(s.Series[f]) != len(s.T) {
			t.Errorf("series %s: %d values for %d times", f, len(s.Series[f]), len(s.T))
		}
	}
	if len(s.Series) != len(s.Fields) {
		t.Errorf("series has %d columns for fields %v", len(s.Series), s.Fields)
	}
	if !slices.IsSorted(s.T) {
		t.Errorf("t not in order: %v", s.T)
	}
}

func vals(c []*float64) []string {
	out := make([]string, len(c))
	for i, v := range c {
		if v == nil {
			out[i] = "null"
		} else {
			out[i] = strconv.FormatFloat(*v, 'g', -1, 64)
		}
	}
	return out
}

func TestHTTPSeries(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	base := htBase(m)
	tcp := m.tcpAddr()
	const G, K, P = "127.0.0.81", "127.0.0.82", "127.0.0.83"

	// G: 1..10, a gap of 11..13, 14..30, then a reset to 1, 2.
	g := htDial(t, G, tcp)
	g.send(counters(1, 10)...)
	g.send(counters(14, 30)...)
	g.send(counters(1, 2)...)
	// K: key=value readings with fields coming and going; a string field is skipped.
	htDial(t, K, tcp).send("temp=21.5;hum=40\n", "temp=22;room=lab\n", "hum=41\n")
	waitCommitted(t, m, 29+3)

	var s apiSeries
	htJSON(t, base+"/api/series?device="+G, &s)
	s.check(t)
	gm := htStore(t, cfg.DB, inlet.Query{Device: G})
	if s.Device != G || fmt.Sprint(s.Fields) != "[value]" || s.Rows != 29 || len(s.T) != 29 || s.Bucketed {
		t.Fatalf("series G: device %s fields %v rows %d len(t) %d bucketed %v", s.Device, s.Fields, s.Rows, len(s.T), s.Bucketed)
	}
	want := append(append(counters(1, 10), counters(14, 30)...), counters(1, 2)...)
	for i := range want {
		want[i] = strings.TrimSpace(want[i])
	}
	if got := vals(s.Series["value"]); !slices.Equal(got, want) {
		t.Errorf("values %v, want %v", got, want)
	}
	// Without until, last_id is the newest id stored (of any device) when the
	// series was read: nothing of this device lies between it and the series.
	if all := htStore(t, cfg.DB, inlet.Query{}); s.LastID < gm[len(gm)-1].ID || s.LastID > all[len(all)-1].ID {
		t.Errorf("last_id %d, want between this device's newest id %d and the store's %d", s.LastID, gm[len(gm)-1].ID, all[len(all)-1].ID)
	}
	for i, x := range s.T {
		if d := x - float64(gm[i].ReceivedAt)/1e9; d > 0.001 || d < -0.001 {
			t.Errorf("t[%d] = %v, received_at %d", i, x, gm[i].ReceivedAt)
			break
		}
	}
	var sawGap, sawReset bool
	for _, mk := range s.Markers {
		switch mk.Kind {
		case "gap":
			sawGap = true
			if mk.From != 11 || mk.To != 13 || mk.Missing != 3 || mk.T != s.T[10] {
				t.Errorf("gap marker %+v, want 11-13, missing 3, at t %v (the message after)", mk, s.T[10])
			}
		case "reset":
			sawReset = true
			if mk.T != s.T[27] {
				t.Errorf("reset marker %+v, want at t %v", mk, s.T[27])
			}
		default:
			t.Errorf("unexpected marker %+v", mk)
		}
	}
	if !sawGap || !sawReset {
		t.Errorf("markers %+v, want a gap and a reset", s.Markers)
	}

	// Fields in order first seen, nulls where absent, strings skipped.
	var k apiSeries
	htJSON(t, base+"/api/series?device="+K, &k)
	k.check(t)
	if fmt.Sprint(k.Fields) != "[temp hum]" || fmt.Sprint(vals(k.Series["temp"])) != "[21.5 22 null]" ||
		fmt.Sprint(vals(k.Series["hum"])) != "[40 null 41]" || len(k.Markers) != 0 {
		t.Errorf("series K: fields %v temp %v hum %v markers %v", k.Fields, vals(k.Series["temp"]), vals(k.Series["hum"]), k.Markers)
	}

	// An acknowledged device: a missing seq range is a gap marker.
	ack, ok := dialAck(t, tcp, "INLET/1 id=probe-9 boot=x1\n")
	if ok != "INLET/1 OK last=0" {
		t.Fatalf("hello %q", ok)
	}
	ack.send("1 t=1\n", "2 t=2\n", "3 t=3\n", "6 t=6\n", "7 t=7\n")
	ack.ackedUpTo(7)
	var p apiSeries
	htJSON(t, base+"/api/series?device=probe-9", &p)
	p.check(t)
	if len(p.Markers) != 1 || p.Markers[0].Kind != "gap" || p.Markers[0].From != 4 || p.Markers[0].To != 5 ||
		p.Markers[0].Missing != 2 || len(p.T) != 5 || p.Markers[0].T != p.T[3] {
		t.Errorf("acknowledged series: t %v markers %+v, want a gap 4-5 at the time of seq 6", p.T, p.Markers)
	}

	// Bucketing: 300 rows into at most 50 points.
	n := htDial(t, P, tcp)
	for i := 1; i <= 300; i += 30 {
		n.send(counters(i, i+29)...)
		time.Sleep(2 * time.Millisecond) // spread them over time
	}
	waitCommitted(t, m, 29+3+5+300)
	pm := htStore(t, cfg.DB, inlet.Query{Device: P})
	var bk apiSeries
	htJSON(t, base+"/api/series?device="+P+"&points=50", &bk)
	bk.check(t)
	if !bk.Bucketed || len(bk.T) > 50 || len(bk.T) == 0 || bk.Rows != 300 || bk.LastID != pm[len(pm)-1].ID {
		t.Errorf("bucketed series: bucketed %v, %d points, rows %d, last_id %d (want true, ≤50, 300, %d)",
			bk.Bucketed, len(bk.T), bk.Rows, bk.LastID, pm[len(pm)-1].ID)
	}
	// Means of an increasing counter over successive time buckets increase.
	v := bk.Series["value"]
	for i := range v {
		if v[i] == nil || *v[i] < 1 || *v[i] > 300 || (i > 0 && v[i-1] != nil && *v[i] <= *v[i-1]) {
			t.Errorf("bucket means not increasing within 1..300: %v", vals(v))
			break
		}
	}
	if len(bk.Markers) != 0 {
		t.Errorf("markers on a clean counter: %+v", bk.Markers)
	}
	var raw apiSeries
	htJSON(t, base+"/api/series?device="+P+"&points=300", &raw)
	if raw.Bucketed || len(raw.T) != 300 {
		t.Errorf("points=300 for 300 rows: bucketed %v, %d points", raw.Bucketed, len(raw.T))
	}
	// since/until select the rows.
	mid := time.Unix(0, pm[150].ReceivedAt).UTC().Format(time.RFC3339Nano)
	var half apiSeries
	htJSON(t, base+"/api/series?device="+P+"&points=1000&since="+url.QueryEscape(mid), &half)
	var wantRows int64
	for _, x := range pm {
		if x.ReceivedAt >= pm[150].ReceivedAt {
			wantRows++
		}
	}
	var firstVal float64
	for _, x := range pm {
		if x.ReceivedAt >= pm[150].ReceivedAt {
			firstVal, _ = strconv.ParseFloat(string(x.Payload), 64)
			break
		}
	}
	if half.Rows != wantRows || int64(len(half.T)) != wantRows || half.Series["value"][0] == nil || *half.Series["value"][0] != firstVal {
		t.Errorf("since=%s: rows %d, want %d", mid, half.Rows, wantRows)
	}
	// A device with nothing stored: an empty series.
	var none apiSeries
	htJSON(t, base+"/api/series?device=nobody", &none)
	if none.Rows != 0 || len(none.T) != 0 || none.LastID == 0 {
		t.Errorf("empty series %+v", none)
	}

	htWantError(t, base+"/api/series", http.StatusBadRequest, "device")
	htWantError(t, base+"/api/series?device="+P+"&points=0", http.StatusBadRequest, "points")
	htWantError(t, base+"/api/series?device="+P+"&points=20001", http.StatusBadRequest, "points")
	htWantError(t, base+"/api/series?device="+P+"&since=later", http.StatusBadRequest, "since")
}

// ---- /api/stream -------------------------------------------------------------

func TestHTTPStream(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	base := htBase(m)
	tcp := m.tcpAddr()
	const A, B = "127.0.0.91", "127.0.0.92"
	a, b := htDial(t, A, tcp), htDial(t, B, tcp)
	st := openDB(t, cfg.DB)
	stored := func(id int64) bool {
		found := false
		st.Messages(context.Background(), inlet.Query{AfterID: id - 1, Limit: 1}, func(s *inlet.Stored) error {
			found = s.ID == id
			return nil
		})
		return found
	}

	a.send(counters(1, 5)...)
	waitCommitted(t, m, 5)

	// Without Last-Event-ID: only what commits after the stream opened.
	all := openSSE(t, base+"/api/stream")
	onlyB := openSSE(t, base+"/api/stream?device="+B)
	a.send(counters(6, 8)...)
	waitCommitted(t, m, 8)
	b.send(counters(1, 2)...)
	evs := all.take(5)
	for _, ev := range evs {
		id, _ := strconv.ParseInt(ev.id, 10, 64)
		if !stored(id) {
			t.Errorf("event %d arrived before its message was committed", id)
		}
	}
	export := exportByID(t, cfg.DB)
	got := checkEvents(t, evs, export)
	if want := ids(htStore(t, cfg.DB, inlet.Query{AfterID: 5})); !slices.Equal(got, want) {
		t.Errorf("live events %v, want the messages after the stream opened %v", got, want)
	}
	all.mu.Lock()
	if all.retry != "1000" {
		t.Errorf("retry %q, want 1000", all.retry)
	}
	all.mu.Unlock()
	bevs := checkEvents(t, onlyB.take(2), export)
	if want := ids(htStore(t, cfg.DB, inlet.Query{Device: B})); !slices.Equal(bevs, want) {
		t.Errorf("device stream %v, want %v", bevs, want)
	}
	onlyB.none(100 * time.Millisecond)

	// Resume: read some, disconnect, more arrive, reconnect with Last-Event-ID.
	seen := got
	all.close()
	lastSeen := seen[len(seen)-1]
	a.send(counters(9, 30)...)
	b.send(counters(3, 20)...)
	waitCommitted(t, m, 8+2+22+18)
	missed := ids(htStore(t, cfg.DB, inlet.Query{AfterID: lastSeen}))
	if len(missed) != 40 {
		t.Fatalf("%d messages while disconnected, want 40", len(missed))
	}
	export = exportByID(t, cfg.DB)
	res := openSSE(t, base+"/api/stream", "Last-Event-ID", strconv.FormatInt(lastSeen, 10))
	viaQuery := openSSE(t, base+"/api/stream?after_id="+strconv.FormatInt(lastSeen, 10))
	resDev := openSSE(t, base+"/api/stream?device="+A, "Last-Event-ID", strconv.FormatInt(lastSeen, 10))
	if g := checkEvents(t, res.take(40), export); !slices.Equal(g, missed) {
		t.Errorf("resumed stream %v, want %v", g, missed)
	}
	if g := checkEvents(t, viaQuery.take(40), export); !slices.Equal(g, missed) {
		t.Errorf("after_id stream %v, want %v", g, missed)
	}
	missedA := ids(htStore(t, cfg.DB, inlet.Query{AfterID: lastSeen, Device: A}))
	if g := checkEvents(t, resDev.take(len(missedA)), export); !slices.Equal(g, missedA) {
		t.Errorf("resumed device stream %v, want %v", g, missedA)
	}
	// Then live, no repeat, no gap: the union of everything seen is the store.
	a.send(counters(31, 33)...)
	live := checkEvents(t, res.take(3), nil)
	union := append(append(slices.Clone(seen), missed...), live...)
	if storeIDs := ids(htStore(t, cfg.DB, inlet.Query{})); !slices.Equal(union, storeIDs[5:]) {
		t.Errorf("events seen across the reconnect %v, want the stored ids after 5: %v", union, storeIDs[5:])
	}
	viaQuery.take(3)
	res.none(100 * time.Millisecond)

	// A stream resumed past the newest id waits for new ones.
	future := openSSE(t, base+"/api/stream", "Last-Event-ID", "1000000")
	future.none(100 * time.Millisecond)

	// Bad resume points are refused.
	resp, body := htGet(t, base+"/api/stream", "Last-Event-ID", "abc")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"error"`) {
		t.Errorf("Last-Event-ID abc: %s %s", resp.Status, body)
	}
	htWantError(t, base+"/api/stream?after_id=-3", http.StatusBadRequest, "after_id")

	// Subscribers are counted and uncounted.
	waitFor(t, "open streams counted", 5*time.Second, func() bool { return m.Stats.StreamSubscribers.Load() == 5 })
	onlyB.close()
	res.close()
	waitFor(t, "closed streams uncounted", 5*time.Second, func() bool { return m.Stats.StreamSubscribers.Load() == 3 })

	// Shutdown ends the open streams (they never end by themselves) promptly.
	start := time.Now()
	MustClose(t, m)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown with 3 open streams took %s", d)
	}
	for _, s := range []*sseStream{future, viaQuery, resDev} {
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			t.Errorf("a stream is still open after shutdown")
		}
	}
}

// stalledStream opens /api/stream on a raw connection and never reads it. (Its
// receive buffer stays at the default: the kernel only grows it for a reader,
// and shrinking it after the handshake makes loopback TCP drop segments and
// back off, which would stall the test's own later reading.)
func stalledStream(t *testing.T, addr, query string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "GET /api/stream%s HTTP/1.1\r\nHost: inlet\r\n\r\n", query); err != nil {
		t.Fatal(err)
	}
	return c
}

// readStalled reads what a stalled stream has been sent, until it ends or has n
// events; it returns the event ids.
func readStalled(t *testing.T, c net.Conn, n int, d time.Duration) ([]int64, []sseEvent, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stalled stream: %s", resp.Status)
	}
	var got []int64
	var other []sseEvent
	errEnough := errors.New("enough")
	err = func() (err error) {
		defer func() {
			if r := recover(); r == errEnough {
				err = nil
			} else if r != nil {
				panic(r)
			}
		}()
		return parseSSE(resp.Body, func(ev sseEvent) {
			if ev.event != "" {
				other = append(other, ev)
				return
			}
			id, _ := strconv.ParseInt(ev.id, 10, 64)
			got = append(got, id)
			if len(got) == n {
				panic(errEnough)
			}
		}, func(string, string) {})
	}()
	return got, other, err
}

// A subscriber that takes nothing never slows ingestion; with a short write
// timeout it is dropped and counted. Served from an httptest server around
// httpapi.Handler on the real store, writer and hub, so the write timeout can
// be set.
func TestHTTPStreamStalledSubscriber(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP = ""
	m := MustRun(t, cfg)
	serve := func(timeout time.Duration) *httptest.Server {
		stop := make(chan struct{})
		srv := httptest.NewServer(httpapi.Handler(httpapi.Config{
			Stats: m.Stats, Reader: m.store, Hub: m.hub, Logger: testLogger(t),
			StreamWriteTimeout: timeout, Stop: stop,
		}))
		t.Cleanup(func() {
			close(stop)
			srv.CloseClientConnections()
			srv.Close()
		})
		return srv
	}
	patient := serve(time.Minute)
	impatient := serve(300 * time.Millisecond)

	// Phase 1: a stalled subscriber (within its write timeout) while 20k large
	// messages (~9 MB of events) are pushed over one TCP connection.
	c := stalledStream(t, patient.Listener.Addr().String(), "")
	waitFor(t, "the stalled stream to subscribe", 5*time.Second, func() bool { return m.Stats.StreamSubscribers.Load() == 1 })
	const N = 20000
	pad := strings.Repeat("x", 400)
	dev := htDial(t, "127.0.0.95", m.tcpAddr())
	start := time.Now()
	w := bufio.NewWriterSize(dev.c, 64<<10)
	dev.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	for i := 1; i <= N; i++ {
		fmt.Fprintf(w, "n=%d;pad=%s\n", i, pad)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("pushing: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for m.Stats.Committed.Load() < N {
		if time.Now().After(deadline) {
			t.Fatalf("ingestion stalled behind a stalled subscriber: %d of %d committed after 30s", m.Stats.Committed.Load(), N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%d messages committed in %s with a stalled subscriber", N, time.Since(start).Round(time.Millisecond))
	if s, d := m.Stats.StreamSubscribers.Load(), m.Stats.StreamDropped.Load(); s != 1 || d != 0 {
		t.Fatalf("the stalled subscriber is gone before its write timeout: subscribers %d, dropped %d", s, d)
	}
	// It was slow, not lost: reading now, it gets every message in order.
	got, _, err := readStalled(t, c, N, 20*time.Second)
	if err != nil || len(got) != N {
		t.Fatalf("the slow subscriber got %d of %d events: %v", len(got), N, err)
	}
	if want := ids(htStore(t, cfg.DB, inlet.Query{})); !slices.Equal(got, want) {
		t.Errorf("the slow subscriber's ids are not the stored ids")
	}
	c.Close()
	waitFor(t, "the closed stream to be uncounted", 5*time.Second, func() bool { return m.Stats.StreamSubscribers.Load() == 0 })

	// Phase 2: a stalled subscriber with a 300 ms write timeout, resuming from 0
	// (~11 MB to send at once), is dropped and counted; ingestion goes on.
	t.Run("dropped", func(t *testing.T) {
		before := scrape(t, impatient.URL)
		c2 := stalledStream(t, impatient.Listener.Addr().String(), "?after_id=0")
		waitFor(t, "the second stalled stream to subscribe", 5*time.Second, func() bool {
			return m.Stats.StreamSubscribers.Load() == 1 || m.Stats.StreamDropped.Load() == 1
		})
		dev.send("n=0\n")
		waitCommitted(t, m, N+1)
		waitFor(t, "the stalled stream to end", 15*time.Second, func() bool { return m.Stats.StreamSubscribers.Load() == 0 })
		after := scrape(t, impatient.URL)
		if after["inlet_stream_subscribers"] != 0 {
			t.Errorf("inlet_stream_subscribers %v after the drop", after["inlet_stream_subscribers"])
		}
		// The dropped client sees its stream end (a prefix of the messages, in order).
		got, other, err := readStalled(t, c2, -1, 10*time.Second)
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the dropped stream was not closed: %v after %d events", err, len(got))
		}
		if len(got) == N+1 {
			t.Errorf("the stalled stream got every event: it was never stalled, so this test proves nothing")
		}
		if len(got) > 0 && (got[0] != 1 || got[len(got)-1] != int64(len(got))) {
			t.Errorf("the dropped stream's events are not a prefix: first %d, last %d of %d", got[0], got[len(got)-1], len(got))
		}
		t.Logf("the dropped stream delivered %d events, then %v; other events %v", len(got), err, other)
		// docs/http.md: inlet_stream_dropped_total counts subscribers dropped for falling behind.
		if d := after["inlet_stream_dropped_total"] - before["inlet_stream_dropped_total"]; d != 1 {
			t.Errorf("BUG: the stalled subscriber was dropped (its stream ended after the write timeout) but "+
				"inlet_stream_dropped_total rose by %v, want 1 (httpapi/stream.go: send() counts a drop only if "+
				"ctx.Err() == nil, and net/http cancels the request context when a connection write fails)", d)
		}
	})
}

// ---- /metrics -----------------------------------------------------------------

func TestHTTPMetrics(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxMessage = 64
	m := MustRun(t, cfg)
	base := htBase(m)
	before := scrape(t, base)
	for _, k := range []string{
		`inlet_messages_received_total{transport="tcp"}`, `inlet_messages_received_total{transport="udp"}`,
		`inlet_messages_committed_total`, `inlet_rejected_total{reason="too_long"}`, `inlet_rejected_total{reason="truncated"}`,
		`inlet_rejected_total{reason="refused"}`, `inlet_rejected_total{reason="queue_full"}`,
		`inlet_batch_size_messages_count`, `inlet_commit_duration_seconds_count`, `inlet_ack_latency_seconds_count`,
		`inlet_connections_open{transport="tcp"}`, `inlet_store_healthy`, `inlet_stream_subscribers`,
		`inlet_stream_dropped_total`, `inlet_udp_datagrams_total`, `inlet_queue_messages`,
	} {
		if _, ok := before[k]; !ok {
			t.Errorf("metric %s missing before any traffic", k)
		}
	}
	if before["inlet_store_healthy"] != 1 {
		t.Errorf("inlet_store_healthy %v", before["inlet_store_healthy"])
	}

	// 7 TCP messages with one too-long line among them, 5 UDP datagrams.
	d := htDial(t, "127.0.0.101", m.tcpAddr())
	d.send(counters(1, 3)...)
	d.send(strings.Repeat("9", 100) + "\n")
	d.send(counters(4, 7)...)
	htUDP(t, "127.0.0.102", m.udpAddr(), "1", "2", "3", "4", "5")
	waitCommitted(t, m, 12)
	mid := scrape(t, base)
	delta := func(a, b map[string]float64, k string) float64 { return b[k] - a[k] }
	for k, want := range map[string]float64{
		`inlet_messages_received_total{transport="tcp"}`: 7,
		`inlet_messages_received_total{transport="udp"}`: 5,
		`inlet_udp_datagrams_total`:                      5,
		`inlet_messages_committed_total`:                 12,
		`inlet_rejected_total{reason="too_long"}`:        1,
		`inlet_rejected_total{reason="truncated"}`:       0,
		`inlet_ack_latency_seconds_count`:                0,
	} {
		if got := delta(before, mid, k); got != want {
			t.Errorf("%s rose by %v, want %v", k, got, want)
		}
	}
	for _, k := range []string{`inlet_batch_size_messages_count`, `inlet_commit_duration_seconds_count`, `inlet_batches_committed_total`} {
		if delta(before, mid, k) <= 0 {
			t.Errorf("%s did not increase", k)
		}
	}
	if mid[`inlet_batch_size_messages_sum`]-before[`inlet_batch_size_messages_sum`] != 12 {
		t.Errorf("inlet_batch_size_messages_sum rose by %v, want the 12 committed", delta(before, mid, `inlet_batch_size_messages_sum`))
	}
	for _, h := range []string{"inlet_batch_size_messages", "inlet_commit_duration_seconds", "inlet_ack_latency_seconds"} {
		if mid[h+`_bucket{le="+Inf"}`] != mid[h+"_count"] {
			t.Errorf("%s: +Inf bucket %v, count %v", h, mid[h+`_bucket{le="+Inf"}`], mid[h+"_count"])
		}
	}
	if mid[`inlet_connections_open{transport="tcp"}`] < 1 {
		t.Errorf("open connections %v with one device connected", mid[`inlet_connections_open{transport="tcp"}`])
	}
	if delta(before, mid, `inlet_http_requests_total{code="200"}`) < 1 {
		t.Errorf("inlet_http_requests_total{code=\"200\"} did not count the first scrape")
	}

	// The overview tells the same story.
	var ov struct {
		Committed int64            `json:"committed"`
		Received  map[string]int64 `json:"received"`
		Rejected  map[string]int64 `json:"rejected"`
		Devices   int              `json:"devices"`
		Store     struct {
			Healthy bool `json:"healthy"`
		} `json:"store"`
		RateHistory []int64 `json:"rate_history"`
		Now         string  `json:"now"`
	}
	waitFor(t, "the overview to count both devices", 5*time.Second, func() bool {
		htJSON(t, base+"/api/overview", &ov)
		return ov.Devices == 2
	})
	if ov.Committed != 12 || ov.Received["tcp"] != 7 || ov.Received["udp"] != 5 || ov.Rejected["too_long"] != 1 ||
		ov.Devices != 2 || !ov.Store.Healthy || len(ov.RateHistory) != 60 || !nineDigits.MatchString(ov.Now) {
		t.Errorf("overview %+v", ov)
	}

	// Acknowledged traffic adds ack latencies.
	ack, ok := dialAck(t, m.tcpAddr(), "INLET/1 id=metric-1 boot=m1\n")
	if ok != "INLET/1 OK last=0" {
		t.Fatalf("hello %q", ok)
	}
	ack.send("1 a=1\n", "2 a=2\n", "3 a=3\n")
	ack.ackedUpTo(3)
	waitFor(t, "ack latencies recorded", 5*time.Second, func() bool {
		return scrape(t, base)[`inlet_ack_latency_seconds_count`] > mid[`inlet_ack_latency_seconds_count`]
	})
	end := scrape(t, base)
	if got := delta(mid, end, `inlet_messages_received_total{transport="tcp"}`); got != 3 {
		t.Errorf("tcp received rose by %v with 3 acknowledged messages", got)
	}
	if got := delta(mid, end, `inlet_acked_connections_total`); got != 1 {
		t.Errorf("inlet_acked_connections_total rose by %v, want 1", got)
	}
	if got := delta(mid, end, `inlet_ack_latency_seconds_count`); got < 1 || got > 3 {
		t.Errorf("inlet_ack_latency_seconds_count rose by %v, want 1..3 for 3 messages", got)
	}
}

// ---- security (the real binary) -------------------------------------------------

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

func TestHTTPToken(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--http-token", "s3cret", "--db", db)
	base := "http://" + srv.ready.HTTP
	if err := sendOnce("127.0.0.111", srv.ready.TCP, "1\r\n"); err != nil {
		t.Fatal(err)
	}
	cookie := checkTokenServer(t, base, "s3cret")

	// The session is valid until the token changes: a server with the same
	// token takes it, one with another token does not.
	srv.stop(t, syscall.SIGTERM)
	same := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--http-token", "s3cret", "--db", db)
	if resp, b := htGet(t, "http://"+same.ready.HTTP+"/api/devices", "Cookie", cookie); resp.StatusCode != 200 {
		t.Errorf("the session with the same token after a restart: %s %.200s", resp.Status, b)
	}
	same.stop(t, syscall.SIGTERM)
	other := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--http-token", "n3w", "--db", db)
	if resp, _ := htGet(t, "http://"+other.ready.HTTP+"/api/devices", "Cookie", cookie); resp.StatusCode != 401 {
		t.Errorf("the session after the token changed: %s, want 401", resp.Status)
	}
}

func TestHTTPTokenFromEnv(t *testing.T) {
	t.Setenv("INLET_HTTP_TOKEN", "from-env")
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db)
	base := "http://" + srv.ready.HTTP
	for _, c := range []struct {
		path string
		hdr  []string
		code int
	}{
		{"/healthz", nil, 200},
		{"/api/devices", nil, 401},
		{"/api/devices", []string{"Authorization", "Bearer from-env"}, 200},
		{"/metrics", []string{"Authorization", "Bearer wrong"}, 401},
		{"/metrics", []string{"Authorization", "Bearer from-env"}, 200},
	} {
		if resp, b := htGet(t, base+c.path, c.hdr...); resp.StatusCode != c.code {
			t.Errorf("GET %s %v: %s, want %d: %.200s", c.path, c.hdr, resp.Status, c.code, b)
		}
	}
}

// checkTokenServer checks a server run with --http-token token; it returns the
// session cookie ("inlet_session=…") it signed in with.
func checkTokenServer(t *testing.T, base, token string) string {
	// The probes are open.
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		resp, b := htGet(t, base+path)
		if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != want {
			t.Errorf("GET %s without a token: %s %q, want 200 %s", path, resp.Status, b, want)
		}
	}
	// Everything else needs it.
	protected := []string{"/api/devices", "/api/overview", "/api/messages", "/api/series?device=127.0.0.111", "/metrics", "/api/nothing"}
	for _, path := range protected {
		for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "Basic " + token},
			{"Authorization", "Bearer " + token + "x"}, {"Cookie", "inlet_session=" + token}} {
			resp, b := htGet(t, base+path, hdr...)
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
		resp, b := htGet(t, base+path, "Authorization", "Bearer "+token)
		want := 200
		if path == "/api/nothing" {
			want = 404
		}
		if resp.StatusCode != want {
			t.Errorf("GET %s with the token: %s, want %d: %.200s", path, resp.Status, want, b)
		}
	}
	// Refusals are counted by code.
	if got := scrape(t, base, "Authorization", "Bearer "+token)[`inlet_http_requests_total{code="401"}`]; got < float64(5*len(protected)) {
		t.Errorf("inlet_http_requests_total{code=\"401\"} = %v after %d refusals", got, 5*len(protected))
	}
	// The stream too.
	if resp, _ := htGet(t, base+"/api/stream?after_id=x"); resp.StatusCode != 401 {
		t.Errorf("stream without a token: %s", resp.Status)
	}
	s := openSSE(t, base+"/api/stream?after_id=0", "Authorization", "Bearer "+token)
	if ev := s.next(10 * time.Second); !strings.Contains(ev.data, `"payload":"1"`) {
		t.Errorf("stream with the token: %+v", ev)
	}
	s.close()

	// A browser is sent to the sign-in page.
	resp, _ := htGet(t, base+"/")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("GET / without a session: %s Location %q, want 303 to /login", resp.Status, resp.Header.Get("Location"))
	}
	if resp, b := htGet(t, base+"/login"); resp.StatusCode != 200 || !bytes.Contains(bytes.ToLower(b), []byte("<form")) {
		t.Errorf("GET /login: %s, %.200s", resp.Status, b)
	}
	post := func(form url.Values, kv ...string) *http.Response {
		t.Helper()
		hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		for i := 0; i+1 < len(kv); i += 2 {
			hdr.Add(kv[i], kv[i+1])
		}
		resp, _ := htDo(t, http.MethodPost, base+"/login", hdr, strings.NewReader(form.Encode()))
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
	if session == nil || session.Value == "" || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("POST /login: cookie %+v, want inlet_session, HttpOnly, SameSite=Strict", session)
	}
	if strings.Contains(session.Value, token) {
		t.Errorf("the session cookie holds the token itself: %q", session.Value)
	}
	cookie := "inlet_session=" + session.Value
	if resp, b := htGet(t, base+"/api/devices", "Cookie", cookie); resp.StatusCode != 200 || !bytes.Contains(b, []byte("127.0.0.111")) {
		t.Errorf("GET /api/devices with the session: %s %.200s", resp.Status, b)
	}
	if resp, _ := htGet(t, base+"/", "Cookie", cookie); resp.StatusCode != 200 ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET / with the session: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if resp, _ := htGet(t, base+"/metrics", "Cookie", "inlet_session="+session.Value+"0"); resp.StatusCode != 401 {
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
	// A wrong token: back to the form with error=1, and no cookie.
	resp = post(url.Values{"token": {"guess"}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?error=1") {
		t.Errorf("POST /login with a wrong token: %s Location %q", resp.Status, resp.Header.Get("Location"))
	}
	for _, c := range resp.Cookies() {
		if c.Name == "inlet_session" && c.Value != "" {
			t.Errorf("a wrong token set a session cookie")
		}
	}
	// Logout clears the cookie.
	resp, _ = htDo(t, http.MethodPost, base+"/logout", http.Header{"Cookie": {cookie}}, nil)
	cleared := false
	for _, c := range resp.Cookies() {
		cleared = cleared || (c.Name == "inlet_session" && c.Value == "" && c.MaxAge < 0)
	}
	if resp.StatusCode != http.StatusSeeOther || !cleared {
		t.Errorf("POST /logout: %s, cookies %v", resp.Status, resp.Cookies())
	}
	return cookie
}
