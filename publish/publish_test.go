package publish_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/commit"
	"github.com/inletdev/inlet/publish"
	"github.com/inletdev/inlet/record"
	"github.com/inletdev/inlet/sqlite"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const stream = "INLET"

// natsServer is an embedded NATS server with JetStream on loopback, which a
// test can stop and start again on the same port and store directory.
type natsServer struct {
	t          testing.TB
	dir        string
	port       int
	maxPayload int32 // 0: the server's default
	s          *server.Server
}

func startNATS(t testing.TB) *natsServer { t.Helper(); return startNATSMax(t, 0) }

func startNATSMax(t testing.TB, maxPayload int32) *natsServer {
	t.Helper()
	n := &natsServer{t: t, dir: t.TempDir(), port: server.RANDOM_PORT, maxPayload: maxPayload}
	n.start()
	n.port = n.s.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	var err error
	for try := 0; ; try++ { // the port was free a moment ago; another test may have taken it meanwhile
		n.s, err = server.NewServer(&server.Options{Host: "127.0.0.1", Port: n.port, JetStream: true,
			StoreDir: n.dir, NoLog: true, NoSigs: true, MaxPayload: n.maxPayload})
		if err != nil {
			n.t.Fatal(err)
		}
		go n.s.Start()
		if n.s.ReadyForConnections(10 * time.Second) {
			return
		}
		n.s.Shutdown()
		if try == 20 {
			n.t.Fatal("nats-server did not start")
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (n *natsServer) stop() {
	if n.s != nil {
		n.s.Shutdown()
		n.s.WaitForShutdown()
		n.s = nil
	}
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// js connects a test client.
func (n *natsServer) js() jetstream.JetStream {
	n.t.Helper()
	nc, err := nats.Connect(n.url())
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		n.t.Fatal(err)
	}
	return js
}

// createStream makes the stream the docs describe (one node: no replicas).
func (n *natsServer) createStream() {
	n.t.Helper()
	_, err := n.js().CreateStream(context.Background(), jetstream.StreamConfig{
		Name: stream, Subjects: []string{publish.SubjectPrefix + ">"}, Storage: jetstream.FileStorage,
		Duplicates: time.Hour, Discard: jetstream.DiscardNew,
	})
	if err != nil {
		n.t.Fatal(err)
	}
}

// streamMsg is one message as the stream holds it.
type streamMsg struct {
	subject, id string
	data        []byte
}

// contents reads every message of the stream, in stream order.
func (n *natsServer) contents() []streamMsg {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := n.js().Stream(ctx, stream)
	if err != nil {
		n.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		n.t.Fatal(err)
	}
	total := int(info.State.Msgs)
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		n.t.Fatal(err)
	}
	var out []streamMsg
	for len(out) < total {
		b, err := c.Fetch(min(500, total-len(out)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			n.t.Fatal(err)
		}
		for m := range b.Messages() {
			out = append(out, streamMsg{m.Subject(), m.Headers().Get(jetstream.MsgIDHeader), m.Data()})
		}
		if b.Error() != nil {
			n.t.Fatal(b.Error())
		}
	}
	return out
}

func (n *natsServer) count() uint64 {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := n.js().Stream(ctx, stream)
	if err != nil {
		n.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		n.t.Fatal(err)
	}
	return info.State.Msgs
}

// node is an inlet node's store, writer and publisher, in process.
type node struct {
	t      testing.TB
	path   string
	store  *sqlite.Store
	writer *commit.Writer
	pub    atomic.Pointer[publish.Publisher]
	stats  *inlet.Stats
	sent   atomic.Int64 // messages submitted, each a row: none is a duplicate
}

func newNode(t testing.TB, path string) *node {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "inlet.db")
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, path: path, store: s, stats: new(inlet.Stats)}
	n.writer, err = commit.New(ctx, s, commit.Config{Stats: new(inlet.Stats), OnCommit: func(*inlet.Batch) {
		if p := n.pub.Load(); p != nil {
			p.Notify()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.close() })
	return n
}

func (n *node) startPublisher(url string, cfg publish.Config) *inlet.Stats {
	n.t.Helper()
	cfg.URLs = url
	cfg.Stats = new(inlet.Stats)
	cfg.Logger = slog.New(slog.NewTextHandler(tlog{n.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := publish.New(context.Background(), cfg, n.store, n.store)
	if err != nil {
		n.t.Fatal(err)
	}
	n.pub.Store(p)
	return cfg.Stats
}

func (n *node) stopPublisher() {
	n.t.Helper()
	if p := n.pub.Swap(nil); p != nil {
		if err := p.Close(context.Background()); err != nil {
			n.t.Fatal(err)
		}
	}
}

func (n *node) close() {
	n.stopPublisher()
	if n.writer != nil {
		n.writer.Close(context.Background())
		n.writer = nil
	}
	if n.store != nil {
		n.store.Close()
		n.store = nil
	}
}

// tlog sends the publisher's log to the test's.
type tlog struct{ t testing.TB }

func (w tlog) Write(b []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimSuffix(b, []byte("\n")))
	return len(b), nil
}

var seqs atomic.Int64

// ingest submits k messages: plain ones from IPv4 and IPv6 devices (one with
// a binary payload), acknowledged ones, and one device whose name has every
// kind of character a subject must not hold.
func (n *node) ingest(k int) {
	n.t.Helper()
	if err := n.submit(k); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) submit(k int) error {
	msgs := make([]inlet.Message, 0, k)
	for i := range k {
		m := inlet.Message{ReceivedAt: time.Now().UnixNano(), Transport: inlet.TCP,
			Remote: netip.MustParseAddrPort("192.168.1.7:40000"), Payload: fmt.Appendf(nil, "temp=%d", i)}
		switch i % 5 {
		case 0, 1:
			m.Device = fmt.Sprintf("192.168.1.%d", i%7)
		case 2:
			m.Device, m.Transport = "fe80::1", inlet.UDP
			m.Remote = netip.MustParseAddrPort("[fe80::1]:3001")
			m.Payload = []byte{0xff, 0xfe, byte(i)}
		case 3:
			m.Device, m.Boot, m.Seq = "esp.kitchen", "b1", seqs.Add(1)
		case 4:
			m.Device = "odd *> name\t~.é"
		}
		msgs = append(msgs, m)
	}
	err := n.writer.Submit(context.Background(), msgs)
	if err == nil {
		n.sent.Add(int64(k))
	}
	return err
}

// committed waits until every message submitted is stored, and returns the
// last id.
func (n *node) committed() int64 {
	n.t.Helper()
	want := n.sent.Load()
	waitFor(n.t, "every message committed", func() bool { return n.lastID() == want })
	return want
}

// stored reads back every message of the store.
func (n *node) stored() []inlet.Stored {
	n.t.Helper()
	var out []inlet.Stored
	err := n.store.Messages(context.Background(), inlet.Query{}, func(m *inlet.Stored) error {
		c := *m
		c.Payload = bytes.Clone(m.Payload)
		c.Fields = bytes.Clone(m.Fields)
		out = append(out, c)
		return nil
	})
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

func (n *node) lastID() int64 {
	n.t.Helper()
	id, err := n.store.LastID(context.Background())
	if err != nil {
		n.t.Fatal(err)
	}
	return id
}

// waitPublished waits until the saved position reaches the last message.
func (n *node) waitPublished(name string) {
	n.t.Helper()
	last := n.committed()
	waitFor(n.t, "the position at the last message", func() bool {
		pos, err := n.store.PublishPosition(context.Background(), name)
		return err == nil && pos == last
	})
}

// waitFor polls cond until it holds or a minute passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkStream compares the stream with the store: every stored message once,
// on its subject, with its id and its export record, and nothing else.
func checkStream(t *testing.T, ns *natsServer, n *node, ordered bool) {
	t.Helper()
	stored := n.stored()
	got := ns.contents()
	if len(got) != len(stored) {
		t.Fatalf("stream holds %d messages, the store %d", len(got), len(stored))
	}
	byID := make(map[string]streamMsg, len(got))
	for _, m := range got {
		if _, dup := byID[m.id]; dup {
			t.Fatalf("message %s twice in the stream", m.id)
		}
		byID[m.id] = m
	}
	for i := range stored {
		s := &stored[i]
		id := publish.MsgID(s)
		m, ok := byID[id]
		if !ok {
			t.Fatalf("stored message %d (%s) not in the stream", s.ID, id)
		}
		if want := publish.SubjectPrefix + publish.Token(s.Device); m.subject != want {
			t.Errorf("message %d on %q, want %q", s.ID, m.subject, want)
		}
		if want := record.AppendJSON(nil, s); !bytes.Equal(m.data, want) {
			t.Errorf("message %d: data %s, want %s", s.ID, m.data, want)
		}
		if ordered && got[i].id != id {
			t.Errorf("stream message %d is %s, want %s (id order)", i, got[i].id, id)
		}
	}
}

func TestPublishesEveryMessageOnce(t *testing.T) {
	ns := startNATS(t)
	ns.createStream()
	n := newNode(t, "")
	n.ingest(50) // committed before the publisher starts: published too
	waitFor(t, "the first commit", func() bool { return n.lastID() == 50 })
	st := n.startPublisher(ns.url(), publish.Config{Window: 64})
	for range 20 {
		n.ingest(37)
	}
	total := int64(50 + 20*37)
	waitFor(t, "every message published", func() bool { return st.Published.Load() == total })
	n.stopPublisher()
	if pos, err := n.store.PublishPosition(context.Background(), "nats"); err != nil || pos != n.lastID() {
		t.Errorf("saved position %d, %v; want %d", pos, err, n.lastID())
	}
	if e, d := st.PublishErrors.Load(), st.PublishDuplicates.Load(); e != 0 || d != 0 {
		t.Errorf("%d errors, %d duplicates without an outage", e, d)
	}
	if st.PublishLag.Load() != 0 {
		t.Errorf("lag %d after everything was published", st.PublishLag.Load())
	}
	checkStream(t, ns, n, true)
}

// NATS goes away while devices keep sending, and comes back: the stream ends
// up with every message once, and ingestion went on meanwhile.
func TestOutageLosesNothing(t *testing.T) {
	ns := startNATS(t)
	ns.createStream()
	n := newNode(t, "")
	st := n.startPublisher(ns.url(), publish.Config{Window: 32, Interval: 50 * time.Millisecond, AckTimeout: 2 * time.Second})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				if err := n.submit(10); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	waitFor(t, "publishing under way", func() bool { return st.Published.Load() >= 300 })
	ns.stop()
	waitFor(t, "the disconnect seen", func() bool { return !st.NATSConnected.Load() })
	down := n.lastID()
	waitFor(t, "ingestion while NATS is down", func() bool { return n.lastID() >= down+1000 })
	if st.PublishLag.Load() == 0 {
		waitFor(t, "lag while NATS is down", func() bool { return st.PublishLag.Load() > 0 })
	}
	ns.start()
	waitFor(t, "the reconnect", func() bool { return st.NATSConnected.Load() })
	waitFor(t, "publishing after the outage", func() bool { return st.Published.Load() >= down+500 })
	close(stop)
	wg.Wait()
	n.waitPublished("nats")
	n.stopPublisher()
	// Published after a failure may be ones JetStream already held; it
	// says so, and keeps one.
	t.Logf("%d committed, %d published new, %d again, %d errors", n.lastID(), st.Published.Load(),
		st.PublishDuplicates.Load(), st.PublishErrors.Load())
	checkStream(t, ns, n, false)
}

// A restarted inlet resumes from the saved position; another publisher (a
// second node, or a position lost) publishing the same messages again adds
// nothing to the stream.
func TestRestartResumesFromPosition(t *testing.T) {
	ns := startNATS(t)
	ns.createStream()
	dir := t.TempDir()
	path := filepath.Join(dir, "inlet.db")
	n := newNode(t, path)
	st := n.startPublisher(ns.url(), publish.Config{})
	n.ingest(300)
	waitFor(t, "300 published", func() bool { return st.Published.Load() == 300 })
	n.close()

	n = newNode(t, path)
	n.ingest(200) // committed with no publisher running
	waitFor(t, "the commit", func() bool { return n.lastID() == 500 })
	st = n.startPublisher(ns.url(), publish.Config{})
	waitFor(t, "the rest published", func() bool { return st.Published.Load() == 200 })
	n.stopPublisher()
	if d := st.PublishDuplicates.Load(); d != 0 {
		t.Errorf("restart published %d messages again: not resumed from the position", d)
	}
	checkStream(t, ns, n, true)

	st = n.startPublisher(ns.url(), publish.Config{Name: "node-b"}) // a position of its own, at 0
	waitFor(t, "the second publisher done", func() bool { return st.PublishDuplicates.Load() == 500 })
	n.stopPublisher()
	if p := st.Published.Load(); p != 0 {
		t.Errorf("a second publisher added %d messages to the stream", p)
	}
	if c := ns.count(); c != 500 {
		t.Errorf("stream holds %d messages, want 500", c)
	}
}

// Without a stream for the subjects, nothing is lost either: the publisher
// keeps retrying, and publishes once the stream exists.
func TestNoStreamYet(t *testing.T) {
	ns := startNATS(t)
	n := newNode(t, "")
	st := n.startPublisher(ns.url(), publish.Config{Interval: 50 * time.Millisecond})
	n.ingest(40)
	waitFor(t, "a failure counted", func() bool { return st.PublishErrors.Load() > 0 })
	if st.Published.Load() != 0 {
		t.Fatal("published without a stream")
	}
	ns.createStream()
	n.waitPublished("nats")
	n.stopPublisher()
	checkStream(t, ns, n, false) // the client's own retries may have stored some before the first
}

// NATS down from the start: the publisher starts anyway, and Close returns
// within its bound with the position where it was.
func TestStartsAndStopsWithNATSDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	n := newNode(t, "")
	st := n.startPublisher(url, publish.Config{DrainTimeout: 300 * time.Millisecond})
	n.ingest(20)
	waitFor(t, "the commit", func() bool { return n.lastID() == 20 })
	if st.NATSConnected.Load() {
		t.Fatal("connected to nothing")
	}
	start := time.Now()
	n.stopPublisher()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with NATS down", d)
	}
	if pos, err := n.store.PublishPosition(context.Background(), "nats"); err != nil || pos != 0 {
		t.Errorf("position %d, %v; want 0", pos, err)
	}
}

// Close publishes what has committed before it returns: here nothing wakes the
// publisher (no commit hook, no polling), so only Close's drain can publish.
func TestCloseDrains(t *testing.T) {
	ns := startNATS(t)
	ns.createStream()
	n := newNode(t, "")
	st := n.startPublisher(ns.url(), publish.Config{Interval: time.Hour})
	p := n.pub.Swap(nil) // the commit hook no longer wakes it
	waitFor(t, "connected", func() bool { return st.NATSConnected.Load() })
	n.ingest(100)
	n.committed()
	time.Sleep(100 * time.Millisecond)
	if got := st.Published.Load(); got != 0 {
		t.Fatalf("%d published without a wake-up", got)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := st.Published.Load(); got != 100 {
		t.Errorf("Close published %d of 100", got)
	}
	if pos, err := n.store.PublishPosition(context.Background(), "nats"); err != nil || pos != 100 {
		t.Errorf("position after Close: %d, %v; want 100", pos, err)
	}
	checkStream(t, ns, n, true)
}

// A message too large for the server's max_payload cannot be published now
// or ever: it is passed over (counted, logged), and the feed goes on.
func TestTooLargeIsPassedOver(t *testing.T) {
	ns := startNATSMax(t, 2048)
	ns.createStream()
	n := newNode(t, "")
	st := n.startPublisher(ns.url(), publish.Config{})
	n.ingest(10)
	big := inlet.Message{ReceivedAt: time.Now().UnixNano(), Device: "10.0.0.9", Transport: inlet.TCP,
		Remote: netip.MustParseAddrPort("10.0.0.9:4000"), Payload: bytes.Repeat([]byte("x"), 3000)}
	if err := n.writer.Submit(context.Background(), []inlet.Message{big}); err != nil {
		t.Fatal(err)
	}
	n.sent.Add(1)
	n.ingest(10)
	n.waitPublished("nats")
	n.stopPublisher()
	if got, e := st.Published.Load(), st.PublishErrors.Load(); got != 20 || e != 1 {
		t.Errorf("%d published, %d errors; want 20 and 1", got, e)
	}
	if c := ns.count(); c != 20 {
		t.Errorf("stream holds %d, want 20", c)
	}
}
