package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

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

	mu     sync.Mutex
	retry  string
	pings  int
	err    error // why the stream ended
	opened string
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
	err := parseSSE(s.resp.Body, func(ev sseEvent) {
		s.events <- ev
	}, func(field, value string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch field {
		case "retry":
			s.retry = value
		case "ping":
			s.pings++
		case "id-only":
			if s.opened == "" {
				s.opened = value // the opening event: where the stream starts
			}
		}
	})
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// parseSSE parses an event stream (the HTML spec's rules, minus BOM handling)
// until r ends: each dispatched event goes to emit; retry, comments and events
// with an id but no data (which set the last event id and dispatch nothing) to
// meta.
func parseSSE(r io.Reader, emit func(sseEvent), meta func(field, value string)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var ev sseEvent
	var data []string
	hasData, hasID := false, false
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
			} else if hasID {
				meta("id-only", ev.id)
			}
			ev, data, hasData, hasID = sseEvent{}, nil, false, false
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
			ev.id, hasID = value, true
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

// ended reports whether the stream ended within d.
func (s *sseStream) ended(d time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(d):
		return false
	}
}

// checkEvents checks that each event is a stored message: id = the message id,
// data = its NDJSON record as /api/messages?format=ndjson (and inlet export)
// writes it, ids strictly increasing. It returns the ids.
func checkEvents(t testing.TB, evs []sseEvent, records map[int64]string) []int64 {
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
		if want, ok := records[id]; ok && want != ev.data {
			t.Errorf("event %d data\n%s\nwant the NDJSON record\n%s", id, ev.data, want)
		} else if !ok && records != nil {
			t.Errorf("event %d: no such message in the store", id)
		}
		if len(out) > 0 && id <= out[len(out)-1] {
			t.Errorf("event ids not increasing: %d after %d", id, out[len(out)-1])
		}
		out = append(out, id)
	}
	return out
}

// records reads /api/messages?format=ndjson and indexes its lines by id.
func (e *env) records() map[int64]string {
	e.t.Helper()
	resp, b := get(e.t, e.base+"/api/messages?format=ndjson")
	if resp.StatusCode != 200 {
		e.t.Fatalf("ndjson: %s", resp.Status)
	}
	m := make(map[int64]string)
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		var r apiMessage
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			e.t.Fatalf("ndjson line %q: %v", l, err)
		}
		m[r.ID] = l
	}
	return m
}

// readStalled reads what a stalled stream has been sent, until it ends or has
// n events (n < 0: until it ends); it returns the event ids.
func readStalled(t testing.TB, c net.Conn, n int, d time.Duration) ([]int64, error) {
	t.Helper()
	resp, err := readResponse(t, c, d)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stalled stream: %s", resp.Status)
	}
	var got []int64
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
			id, _ := strconv.ParseInt(ev.id, 10, 64)
			got = append(got, id)
			if len(got) == n {
				panic(errEnough)
			}
		}, func(string, string) {})
	}()
	return got, err
}
