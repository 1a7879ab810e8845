package httpapi_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/httpapi"
)

// countingReader is the real store, counting the message reads made through it.
type countingReader struct {
	inlet.Reader
	reads  atomic.Int64
	behind atomic.Int64 // reads of streams behind the ring, for themselves
}

func (c *countingReader) Messages(ctx context.Context, q inlet.Query, fn func(*inlet.Stored) error) error {
	c.reads.Add(1)
	if q.Limit == 1000 {
		c.behind.Add(1)
	}
	return c.Reader.Messages(ctx, q, fn)
}

func withCountingReader(c *countingReader) envOption {
	return func(cfg *httpapi.Config) {
		c.Reader = cfg.Reader
		cfg.Reader = c
	}
}

func TestStream(t *testing.T) {
	e := newEnv(t)
	const A, B = "10.0.0.91", "10.0.0.92"
	e.send(counterMsgs(A, 1, 5)...)

	// Without Last-Event-ID: only what commits after the stream opened.
	all := openSSE(t, e.base+"/api/stream")
	onlyB := openSSE(t, e.base+"/api/stream?device="+B)
	waitFor(t, "two subscribers", 5*time.Second, func() bool { return e.stats.StreamSubscribers.Load() == 2 })
	e.send(counterMsgs(A, 6, 8)...)
	e.send(counterMsgs(B, 1, 2)...)
	evs := all.take(5)
	records := e.records()
	got := checkEvents(t, evs, records)
	if want := ids(e.stored(inlet.Query{AfterID: 5})); !slices.Equal(got, want) {
		t.Errorf("live events %v, want the messages after the stream opened %v", got, want)
	}
	all.mu.Lock()
	if all.retry != "1000" || all.opened != "5" {
		t.Errorf("retry %q, opening id %q: want 1000 and 5 (the newest id when it opened)", all.retry, all.opened)
	}
	all.mu.Unlock()
	bevs := checkEvents(t, onlyB.take(2), records)
	if want := ids(e.stored(inlet.Query{Device: B})); !slices.Equal(bevs, want) {
		t.Errorf("device stream %v, want %v", bevs, want)
	}
	onlyB.none(100 * time.Millisecond)

	// Resume: read some, disconnect, more arrive, reconnect with Last-Event-ID.
	seen := got
	all.close()
	lastSeen := seen[len(seen)-1]
	e.send(counterMsgs(A, 9, 30)...)
	e.send(counterMsgs(B, 3, 20)...)
	missed := ids(e.stored(inlet.Query{AfterID: lastSeen}))
	if len(missed) != 40 {
		t.Fatalf("%d messages while disconnected, want 40", len(missed))
	}
	records = e.records()
	from := strconv.FormatInt(lastSeen, 10)
	res := openSSE(t, e.base+"/api/stream", "Last-Event-ID", from)
	viaQuery := openSSE(t, e.base+"/api/stream?after_id="+from)
	resDev := openSSE(t, e.base+"/api/stream?device="+A, "Last-Event-ID", from)
	if g := checkEvents(t, res.take(40), records); !slices.Equal(g, missed) {
		t.Errorf("resumed stream %v, want %v", g, missed)
	}
	if g := checkEvents(t, viaQuery.take(40), records); !slices.Equal(g, missed) {
		t.Errorf("after_id stream %v, want %v", g, missed)
	}
	missedA := ids(e.stored(inlet.Query{AfterID: lastSeen, Device: A}))
	if g := checkEvents(t, resDev.take(len(missedA)), records); !slices.Equal(g, missedA) {
		t.Errorf("resumed device stream %v, want %v", g, missedA)
	}
	res.mu.Lock()
	if res.opened != from {
		t.Errorf("resumed stream opened at %q, want %s", res.opened, from)
	}
	res.mu.Unlock()
	// Then live, no repeat, no gap: the union of everything seen is the store.
	e.send(counterMsgs(A, 31, 33)...)
	live := checkEvents(t, res.take(3), nil)
	union := append(append(slices.Clone(seen), missed...), live...)
	if storeIDs := ids(e.stored(inlet.Query{})); !slices.Equal(union, storeIDs[5:]) {
		t.Errorf("events seen across the reconnect %v, want the stored ids after 5: %v", union, storeIDs[5:])
	}
	viaQuery.take(3)
	resDev.take(3)
	res.none(100 * time.Millisecond)

	// A stream resumed past the newest id waits for new ones.
	future := openSSE(t, e.base+"/api/stream", "Last-Event-ID", "1000000")
	future.none(100 * time.Millisecond)

	// Bad resume points are refused.
	resp, body := get(t, e.base+"/api/stream", "Last-Event-ID", "abc")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"error"`) {
		t.Errorf("Last-Event-ID abc: %s %s", resp.Status, body)
	}
	wantError(t, e.base+"/api/stream?after_id=-3", http.StatusBadRequest, "after_id")

	// Subscribers are counted and uncounted, in the stats and the metrics.
	waitFor(t, "open streams counted", 5*time.Second, func() bool { return e.stats.StreamSubscribers.Load() == 5 })
	if got := scrape(t, e.base)["inlet_stream_subscribers"]; got != 5 {
		t.Errorf("inlet_stream_subscribers %v, want 5", got)
	}
	onlyB.close()
	res.close()
	waitFor(t, "closed streams uncounted", 5*time.Second, func() bool { return e.stats.StreamSubscribers.Load() == 3 })

	// Shutdown ends the open streams (they never end by themselves) at once.
	start := time.Now()
	e.stopStreams()
	for _, s := range []*sseStream{future, viaQuery, resDev} {
		if !s.ended(5 * time.Second) {
			t.Errorf("a stream is still open after shutdown")
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("streams took %s to end at shutdown", d)
	}
	waitFor(t, "streams uncounted after shutdown", 5*time.Second, func() bool { return e.stats.StreamSubscribers.Load() == 0 })
	if d := e.stats.StreamDropped.Load(); d != 0 {
		t.Errorf("shutdown counted %d streams as dropped", d)
	}
}

// Every stream is fed by one read of each committed range: the store is not
// read once per commit and per subscriber (the stream readers slowed ingestion
// 57× with 256 subscribers when each re-read the store on every commit).
func TestStreamReadsStoreOncePerCommit(t *testing.T) {
	var cr countingReader
	e := newEnv(t, withCountingReader(&cr))
	const subs, commits = 32, 20
	e.send(msg("10.0.0.1", "0"))
	var streams []*sseStream
	for i := range subs {
		q := ""
		if i%2 == 1 {
			q = "?device=10.0.0." + strconv.Itoa(1+i%4) // some filtered, some for nobody yet
		}
		streams = append(streams, openSSE(t, e.base+"/api/stream"+q))
	}
	waitFor(t, "subscribers", 10*time.Second, func() bool { return e.stats.StreamSubscribers.Load() == subs })
	before := cr.reads.Load()
	for i := 1; i <= commits; i++ {
		e.send(msg("10.0.0.1", strconv.Itoa(i)), msg("10.0.0.3", strconv.Itoa(i)))
		// Every unfiltered stream has the commit before the next one.
		for j, s := range streams {
			if j%2 == 0 {
				s.take(2)
			}
		}
	}
	reads := cr.reads.Load() - before
	t.Logf("%d store reads for %d commits and %d streams", reads, commits, subs)
	if reads > 2*commits+2 {
		t.Errorf("%d store reads for %d commits with %d streams: the store is read per stream, want about one read per commit", reads, commits, subs)
	}
	// The filtered streams got exactly their device's messages.
	for j, s := range streams {
		if j%2 == 1 && (1+j%4 == 1 || 1+j%4 == 3) {
			dev := "10.0.0." + strconv.Itoa(1+j%4)
			got := checkEvents(t, s.take(commits), nil)
			if want := ids(e.stored(inlet.Query{Device: dev, AfterID: 1})); !slices.Equal(got, want) {
				t.Errorf("stream of %s: %v, want %v", dev, got, want)
			}
		}
	}
}

// A stream that falls behind the feed's ring (a client that stalls while more
// than the ring holds is committed), and streams that resume from before it,
// read the store themselves and meet the live events with no gap and no
// repeat.
func TestStreamBehindTheRing(t *testing.T) {
	defer httpapi.SetRingBounds(64, 16<<10)()
	var cr countingReader
	e := newEnv(t, withCountingReader(&cr))
	e.send(counterMsgs("10.0.0.5", 1, 10)...)
	// Opened before any ring exists: a stalled stream (with a small receive
	// buffer, set before the handshake), a reading one and a filtered one.
	stalled := stalledConn(t, e.srv.Listener.Addr().String(), "/api/stream")
	reading := openSSE(t, e.base+"/api/stream")
	filtered := openSSE(t, e.base+"/api/stream?device=10.0.0.6")
	waitFor(t, "subscribers", 5*time.Second, func() bool { return e.stats.StreamSubscribers.Load() == 3 })

	// ~0.5 MB of events, committed 500 at a time: far more than the ring (64
	// events, 16 KiB) and the stalled client's socket buffers hold.
	const N = 1500
	pad := strings.Repeat("x", 200)
	var batch []inlet.Message
	for i := 1; i <= N; i++ {
		dev := "10.0.0.5"
		if i%100 == 0 {
			dev = "10.0.0.6"
		}
		batch = append(batch, msg(dev, fmt.Sprintf("n=%d;pad=%s", i, pad)))
		if len(batch) == 500 {
			e.send(batch...)
			batch = nil
		}
	}
	want := ids(e.stored(inlet.Query{AfterID: 10}))
	wantDev := ids(e.stored(inlet.Query{AfterID: 10, Device: "10.0.0.6"}))
	// The stalled client reads now (within its 10 s write timeout): every
	// message, in order, once.
	got, err := readStalled(t, stalled, N, 30*time.Second)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("the stalled stream got %d of %d events in order (%v)", len(got), N, err)
	}
	if got := checkEvents(t, reading.take(N), nil); !slices.Equal(got, want) {
		t.Errorf("the reading stream got %d events, not the %d stored in order", len(got), len(want))
	}
	if got := checkEvents(t, filtered.take(len(wantDev)), nil); !slices.Equal(got, wantDev) {
		t.Errorf("the filtered stream: %v, want %v", got, wantDev)
	}
	// Resumed from the start (long behind the ring), with and without a device.
	records := e.records()
	res := openSSE(t, e.base+"/api/stream?after_id=0")
	resDev := openSSE(t, e.base+"/api/stream?device=10.0.0.6", "Last-Event-ID", "5")
	all := ids(e.stored(inlet.Query{}))
	if got := checkEvents(t, res.take(len(all)), records); !slices.Equal(got, all) {
		t.Errorf("the stream resumed from 0 got %d events, not the %d stored in order", len(got), len(all))
	}
	if got := checkEvents(t, resDev.take(len(wantDev)), records); !slices.Equal(got, wantDev) {
		t.Errorf("the device stream resumed from 5: %v, want %v", got, wantDev)
	}
	if cr.behind.Load() == 0 {
		t.Errorf("no stream read the store for itself: the test did not put any behind the ring")
	}
	// And then live.
	e.send(msg("10.0.0.6", "last"))
	last := ids(e.stored(inlet.Query{AfterID: all[len(all)-1]}))
	for _, s := range []*sseStream{reading, filtered, res, resDev} {
		if got := checkEvents(t, s.take(1), nil); !slices.Equal(got, last) {
			t.Errorf("live after catching up: %v, want %v", got, last)
		}
		s.none(50 * time.Millisecond)
	}
}

// stalledConn sends a GET from a socket with a small receive buffer (set
// before the handshake, so the window is small from the start) and reads
// nothing until the caller does.
func stalledConn(t testing.TB, addr, path string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = setRecvBuffer(fd, 64<<10) })
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: inlet\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	return c
}

// A subscriber that takes nothing never slows ingestion; after the write
// timeout it is dropped and counted, and its stream ends.
func TestStreamStalledSubscriberDropped(t *testing.T) {
	e := newEnv(t, withWriteTimeout(300*time.Millisecond))
	const N = 5000
	pad := strings.Repeat("x", 400)
	var batch []inlet.Message
	for i := 1; i <= N; i++ {
		batch = append(batch, msg("10.0.0.7", fmt.Sprintf("n=%d;pad=%s", i, pad)))
	}
	e.send(batch...)
	before := scrape(t, e.base)
	// Resuming from 0: ~2.3 MB to send at once, to a client that reads nothing.
	c := stalledConn(t, e.srv.Listener.Addr().String(), "/api/stream?after_id=0")
	waitFor(t, "the stalled stream to subscribe", 5*time.Second, func() bool {
		return e.stats.StreamSubscribers.Load() == 1 || e.stats.StreamDropped.Load() == 1
	})
	e.send(msg("10.0.0.7", "n=0")) // ingestion goes on meanwhile
	waitFor(t, "the stalled stream to end", 15*time.Second, func() bool { return e.stats.StreamSubscribers.Load() == 0 })
	after := scrape(t, e.base)
	if after["inlet_stream_subscribers"] != 0 {
		t.Errorf("inlet_stream_subscribers %v after the drop", after["inlet_stream_subscribers"])
	}
	// docs/http.md: inlet_stream_dropped_total counts subscribers dropped for
	// falling behind (net/http cancels the request context when a write fails,
	// so the drop must be told by the deadline error, not the context).
	if d := after["inlet_stream_dropped_total"] - before["inlet_stream_dropped_total"]; d != 1 {
		t.Errorf("the stalled subscriber was dropped but inlet_stream_dropped_total rose by %v, want 1", d)
	}
	// The dropped client sees its stream end: a prefix of the messages, in order.
	got, err := readStalled(t, c, -1, 10*time.Second)
	if err != nil && strings.Contains(err.Error(), "timeout") {
		t.Errorf("the dropped stream was not closed: %v after %d events", err, len(got))
	}
	if len(got) >= N {
		t.Errorf("the stalled stream got every event: it was never stalled, so this test proves nothing")
	}
	if len(got) > 0 && (got[0] != 1 || got[len(got)-1] != int64(len(got))) {
		t.Errorf("the dropped stream's events are not a prefix: first %d, last %d of %d", got[0], got[len(got)-1], len(got))
	}
}

// At shutdown a stream blocked on a stalled client ends at once, not after its
// write timeout, and is not counted as dropped.
func TestStreamStalledEndsAtShutdown(t *testing.T) {
	e := newEnv(t)
	var batch []inlet.Message
	pad := strings.Repeat("x", 400)
	for i := range 5000 {
		batch = append(batch, msg("10.0.0.8", fmt.Sprintf("%d %s", i, pad)))
	}
	e.send(batch...)
	stalledConn(t, e.srv.Listener.Addr().String(), "/api/stream?after_id=0")
	waitFor(t, "the stalled stream to subscribe", 5*time.Second, func() bool { return e.stats.StreamSubscribers.Load() == 1 })
	time.Sleep(300 * time.Millisecond) // the server writes until the socket buffers are full
	start := time.Now()
	e.stopStreams()
	waitFor(t, "the stalled stream to end", 5*time.Second, func() bool { return e.stats.StreamSubscribers.Load() == 0 })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the stalled stream took %s to end at shutdown (its write timeout is 10 s)", d)
	}
	if d := e.stats.StreamDropped.Load(); d != 0 {
		t.Errorf("shutdown counted the stalled stream as dropped (%d)", d)
	}
}

// At most MaxStreams streams are open at once; then 503.
func TestStreamLimit(t *testing.T) {
	e := newEnv(t, withMaxStreams(2))
	a := openSSE(t, e.base+"/api/stream")
	openSSE(t, e.base+"/api/stream")
	wantError(t, e.base+"/api/stream", http.StatusServiceUnavailable, "too many open streams")
	a.close()
	waitFor(t, "a slot to free", 5*time.Second, func() bool { return e.stats.StreamSubscribers.Load() == 1 })
	openSSE(t, e.base+"/api/stream")
}

// While messages wait to be committed (a burst), the feed holds back, for at
// most a second: storing comes first, and streams still get their events.
func TestStreamHoldsBackDuringBurst(t *testing.T) {
	e := newEnv(t)
	s := openSSE(t, e.base+"/api/stream")
	waitFor(t, "the stream", 5*time.Second, func() bool { return e.stats.StreamSubscribers.Load() == 1 })
	e.send(msg("10.0.0.9", "1"))
	s.take(1) // the feed has started and delivers at once without a burst

	// As the listeners count them: about 5,000 messages received and not yet committed.
	e.stats.MessagesTCP.Add(5001)
	start := time.Now()
	e.send(msg("10.0.0.9", "2"))
	s.none(200 * time.Millisecond)
	s.take(1)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the event came %s after its commit during a burst, want within about a second", d)
	}
	t.Logf("held back for %s", time.Since(start).Round(time.Millisecond))
	// The burst is over: events flow at once again.
	e.stats.MessagesTCP.Add(-5000)
	e.send(msg("10.0.0.9", "3"))
	s.take(1)
}
