// Package publish owns inlet's feed to NATS JetStream (serve --publish). It
// reads the committed messages back from the store in id order, publishes each
// one's export record (the NDJSON line of inlet export) to
// inlet.msg.<device token> with a Nats-Msg-Id that JetStream de-duplicates on,
// and keeps in the store the position up to which JetStream has acknowledged
// every message, so that an outage of NATS or a restart of inlet loses nothing.
// It runs beside the commit writer, woken by its commit hook and reading the
// store: a message is published only after it is durable, and a slow or absent
// NATS never holds up ingestion. docs/scale.md ("NATS JetStream") is its
// user-facing description.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/record"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Positions keeps publishers' positions: the highest message id such that it
// and every message before it were acknowledged downstream. The SQLite store
// implements it (table publish_positions).
type Positions interface {
	PublishPosition(ctx context.Context, name string) (int64, error)
	// SetPublishPosition saves id; a position never moves back.
	SetPublishPosition(ctx context.Context, name string, id int64) error
}

// Config sets where and how to publish.
type Config struct {
	// URLs are the NATS servers, nats://host:port or tls://host:port,
	// comma-separated (the --publish value). Credentials may be given in the
	// URL (nats://user:password@host:4222); they are never logged.
	URLs string
	// Name keys the position in the store (default "nats"). Nodes sharing
	// one store share one position under one name, or keep one each under
	// names of their own (docs/scale.md).
	Name string
	// Window bounds the messages published and not yet acknowledged
	// (default 1024), and WindowBytes their record bytes (default 8 MiB):
	// the publisher's memory, whatever the backlog.
	Window      int
	WindowBytes int
	// AckTimeout is how long a publish may wait for JetStream's
	// acknowledgement before it counts as failed (default 10 s).
	AckTimeout time.Duration
	// Interval is how often the position is saved (if it moved), the lag
	// measured, and the store looked at without a wake-up (rows another node
	// committed to a shared store) (default 1 s).
	Interval time.Duration
	// DrainTimeout bounds how long Close keeps publishing what is committed
	// (default 5 s); what is left is published at the next start.
	DrainTimeout time.Duration

	Logger *slog.Logger
	Stats  *inlet.Stats
}

// DefaultConfig holds the publisher's defaults (docs/cli.md, --publish).
func DefaultConfig() Config {
	return Config{
		Name:         "nats",
		Window:       1024,
		WindowBytes:  8 << 20,
		AckTimeout:   10 * time.Second,
		Interval:     time.Second,
		DrainTimeout: 5 * time.Second,
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.Name == "" {
		c.Name = d.Name
	}
	if c.Window <= 0 {
		c.Window = d.Window
	}
	if c.WindowBytes <= 0 {
		c.WindowBytes = d.WindowBytes
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = d.AckTimeout
	}
	if c.Interval <= 0 {
		c.Interval = d.Interval
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = d.DrainTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Stats == nil {
		c.Stats = new(inlet.Stats)
	}
}

// ParseURLs checks a --publish value and returns its servers without any
// credentials, for logs.
func ParseURLs(s string) ([]string, error) {
	var hosts []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		u, err := url.Parse(f)
		if err != nil || u.Host == "" || (u.Scheme != "nats" && u.Scheme != "tls") || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("%q: want nats://host:port or tls://host:port (several separated by commas)", redact(f))
		}
		hosts = append(hosts, u.Scheme+"://"+u.Host)
	}
	if len(hosts) == 0 {
		return nil, errors.New("no NATS server given: want nats://host:port[,nats://host:port...]")
	}
	return hosts, nil
}

// redact drops what looks like credentials from a URL that did not parse.
func redact(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "…@" + s[i+1:]
		}
		return "…@" + s[i+1:]
	}
	return s
}

// Publisher publishes committed messages to JetStream, in id order, from a
// position kept in the store.
type Publisher struct {
	cfg   Config
	r     inlet.Reader
	pos   Positions
	hosts []string
	nc    *nats.Conn
	js    jetstream.JetStream

	wake      chan struct{}
	closeCh   chan context.Context
	done      chan struct{}
	saveCh    chan int64 // the position to save; holds the latest only
	saverDone chan struct{}
	ctx       context.Context // ends when the publisher has stopped
	cancel    context.CancelFunc
	closed    sync.Once

	connMu     sync.Mutex
	conn       logLimiter // disconnects
	downLogged bool       // the last disconnect was logged: log the reconnect
	everUp     bool
	flaps      int        // disconnects not logged
	errs       logLimiter // the client's asynchronous errors
	fail       logLimiter // publish failures

	closeErr error // set by the saver before saverDone closes
}

// New loads the position named cfg.Name from pos, connects to NATS (in the
// background: a server that is down is retried for as long as the publisher
// runs) and starts publishing what r holds after the position.
func New(ctx context.Context, cfg Config, r inlet.Reader, pos Positions) (*Publisher, error) {
	cfg.setDefaults()
	hosts, err := ParseURLs(cfg.URLs)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	start, err := pos.PublishPosition(ctx, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("publish: load position: %w", err)
	}
	p := &Publisher{
		cfg:       cfg,
		r:         r,
		pos:       pos,
		hosts:     hosts,
		wake:      make(chan struct{}, 1),
		closeCh:   make(chan context.Context, 1),
		done:      make(chan struct{}),
		saveCh:    make(chan int64, 1),
		saverDone: make(chan struct{}),
		conn:      logLimiter{every: 10 * time.Second},
		errs:      logLimiter{every: 10 * time.Second},
		fail:      logLimiter{every: 10 * time.Second},
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	st := cfg.Stats
	p.nc, err = nats.Connect(cfg.URLs,
		nats.Name("inlet"),
		nats.RetryOnFailedConnect(true), // start even if NATS is down; connect when it is up
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		// While disconnected a publish fails at once rather than waiting in a
		// buffer whose fate is unknown: the store is the buffer.
		nats.ReconnectBufSize(-1),
		nats.NoCallbacksAfterClientClose(), // Close's own disconnect is no news
		nats.ConnectHandler(func(*nats.Conn) { p.connected(true, "publish: connected to NATS", nil) }),
		nats.ReconnectHandler(func(*nats.Conn) { p.connected(true, "publish: reconnected to NATS", nil) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if n, ok := p.errs.allow(); ok { // instead of the client's own line on stderr
				p.cfg.Logger.Warn("publish: NATS connection error", "err", err, "events_not_logged", n)
			}
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			p.connected(false, "publish: disconnected from NATS; messages are kept in the store", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("publish: connect to %s: %w", strings.Join(hosts, ","), err)
	}
	st.Publishing.Store(true)
	st.NATSConnected.Store(p.nc.IsConnected())
	p.js, err = jetstream.New(p.nc,
		jetstream.WithPublishAsyncMaxPending(cfg.Window),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout))
	if err != nil {
		p.nc.Close()
		return nil, fmt.Errorf("publish: %w", err)
	}
	cfg.Logger.Info("publish: publishing committed messages to NATS JetStream", "servers", strings.Join(hosts, ","),
		"subjects", SubjectPrefix+">", "name", cfg.Name, "from_id", start)
	go p.saver(start)
	go p.run(start)
	return p, nil
}

func (p *Publisher) connected(up bool, msg string, err error) {
	p.cfg.Stats.NATSConnected.Store(up)
	if up {
		p.Notify()
	}
	// One line per change, but a flapping connection logs one disconnect
	// per 10 s and the reconnect that ends it; the others are counted.
	p.connMu.Lock()
	defer p.connMu.Unlock()
	var n int
	if up {
		if !p.downLogged && p.everUp {
			return
		}
		p.downLogged, p.everUp = false, true
		n, p.flaps = p.flaps, 0
	} else {
		var ok bool
		if _, ok = p.conn.allow(); !ok {
			p.flaps++
			return
		}
		p.downLogged = true
	}
	args := []any{"servers", strings.Join(p.hosts, ",")}
	if err != nil {
		args = append(args, "err", err)
	}
	if n > 0 {
		args = append(args, "disconnects_not_logged", n)
	}
	level := slog.LevelInfo
	if !up {
		level = slog.LevelWarn
	}
	p.cfg.Logger.Log(context.Background(), level, msg, args...)
}

// Notify tells the publisher that messages have committed. It never blocks:
// it is called from the commit writer's hook.
func (p *Publisher) Notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Close publishes what is committed, for up to DrainTimeout or until ctx
// ends (at once if NATS is not connected), saves the position and disconnects. Messages it could not publish in
// that time are published at the next start (nothing is lost: they are in the
// store). The error is about the position not saved.
func (p *Publisher) Close(ctx context.Context) error {
	var err error
	p.closed.Do(func() {
		dctx, cancel := context.WithTimeout(ctx, p.cfg.DrainTimeout)
		defer cancel()
		p.closeCh <- dctx
		<-p.done
		<-p.saverDone
		p.cancel()
		p.nc.Close()
		p.cfg.Stats.NATSConnected.Store(false)
		err = p.closeErr
	})
	return err
}

// sent is one message published and not yet acknowledged.
type sent struct {
	id   int64
	size int
	ack  jetstream.PubAckFuture
	at   time.Time
}

// A page's records are encoded into slabs of slabSize bytes; a new slab is
// taken when less than slabMin is left (a larger record moves to a new array
// as append grows it, which leaves the bytes already handed out alone).
const (
	slabSize = 64 << 10
	slabMin  = 1 << 10
)

// errFull stops a page read when the window is full.
var errFull = errors.New("window full")

// state is the publishing loop's, owned by its goroutine.
type state struct {
	acked    int64 // the position: every id up to it acknowledged
	saved    int64 // the position as last handed to the saver
	cursor   int64 // the highest id published, acknowledged or not
	last     int64 // the highest id known committed
	inflight []sent
	head     int // inflight[head:] wait for their acknowledgement, in id order
	bytes    int
	more     bool      // the store may hold rows after cursor
	stale    bool      // after a failure: wait until the abandoned publishes are resolved
	retryAt  time.Time // after a failure: no publishing before then
	backoff  time.Duration
	failures int // failures since the last acknowledgement
	// tokens caches the subject tokens of the devices last published (at
	// most maxTokens; Token allocates for most device names).
	tokens map[string]string
}

const maxTokens = 4096

func (s *state) waiting() int { return len(s.inflight) - s.head }

func (p *Publisher) run(start int64) {
	defer close(p.done)
	s := &state{acked: start, saved: start, cursor: start, more: true, tokens: make(map[string]string)}
	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	var draining context.Context // set by Close
	var target int64             // when draining: the last id committed
	p.measure(s)
	for draining == nil || (s.acked < target && draining.Err() == nil && (s.waiting() > 0 || p.nc.IsConnected())) {
		if err := p.fill(s); err != nil {
			p.failed(s, err)
		}
		p.passOver(s)
		var okc <-chan *jetstream.PubAck
		var errc <-chan error
		if s.waiting() > 0 {
			h := s.inflight[s.head].ack
			okc, errc = h.Ok(), h.Err()
		}
		var retryC <-chan time.Time
		if !s.retryAt.IsZero() {
			retryC = time.After(time.Until(s.retryAt))
		}
		var drainDone <-chan struct{}
		if draining != nil {
			drainDone = draining.Done()
		}
		select {
		case pa := <-okc:
			p.acked(s, pa)
			p.takeAcks(s)
		case err := <-errc:
			p.failed(s, err)
		case <-p.wake:
			s.more = true
		case <-retryC:
			s.retryAt = time.Time{}
			s.more = true
		case <-tick.C:
			s.more = true // rows committed without a wake-up: another node's, on a shared store
			if s.waiting() > 0 && time.Since(s.inflight[s.head].at) > 2*p.cfg.AckTimeout {
				p.failed(s, errors.New("no acknowledgement")) // the client's own timeout should have fired first
			}
			p.save(s)
			p.measure(s)
		case ctx := <-p.closeCh:
			draining = ctx
			target = s.cursor
			if last, err := p.r.LastID(ctx); err == nil {
				target = max(target, last) // everything committed: the writer has stopped
				s.last = max(s.last, last)
			}
			s.more = true
		case <-drainDone:
		}
	}
	p.measure(s)
	if s.acked < target {
		p.cfg.Logger.Warn("publish: stopping with messages not yet published; they are published at the next start",
			"published_to_id", s.acked, "committed_to_id", target)
	}
	p.save(s)
	close(p.saveCh)
}

// fill publishes the messages after the cursor while the window has room.
func (p *Publisher) fill(s *state) error {
	if !s.more || !s.retryAt.IsZero() || !p.nc.IsConnected() {
		return nil
	}
	if s.stale {
		if p.js.PublishAsyncPending() > 0 {
			return nil // the next tick looks again
		}
		s.stale = false
	}
	// Refill only once half the window is free: pages, not a query per ack.
	if s.waiting() > p.cfg.Window/2 || s.bytes > p.cfg.WindowBytes/2 {
		return nil
	}
	if s.head > 0 { // keep the waiting ones at the front, so inflight does not grow
		n := copy(s.inflight, s.inflight[s.head:])
		clear(s.inflight[n:])
		s.inflight, s.head = s.inflight[:n], 0
	}
	room := p.cfg.Window - s.waiting()
	n := 0
	var slab []byte
	now := time.Now() // one clock reading per page: the page is sent at once
	err := p.r.Messages(p.ctx, inlet.Query{AfterID: s.cursor, Limit: room}, func(m *inlet.Stored) error {
		// Records are encoded one after another into a slab shared by the
		// page's messages, not into an allocation each: a published message's
		// bytes are never written again (the client may keep them for a
		// retry), so a full slab is left to the collector and a new one taken.
		if cap(slab)-len(slab) < slabMin {
			slab = make([]byte, 0, slabSize)
		}
		at := len(slab)
		slab = record.AppendJSON(slab, m)
		data := slab[at:len(slab):len(slab)]
		tok, ok := s.tokens[m.Device]
		if !ok {
			if len(s.tokens) >= maxTokens {
				clear(s.tokens)
			}
			tok = Token(m.Device)
			s.tokens[m.Device] = tok
		}
		id := msgID(m, tok)
		var f jetstream.PubAckFuture // nil: passed over
		if limit := p.nc.MaxPayload(); limit > 0 && int64(len(data)+len(id)+64) > limit {
			// No server takes it, now or later: retrying would stop the feed
			// for good. It stays in the database.
			p.cfg.Stats.PublishErrors.Add(1)
			p.cfg.Logger.Error("publish: message larger than the NATS server's max_payload; not published (raise max_payload)",
				"id", m.ID, "device", m.Device, "record_bytes", len(data), "max_payload", limit)
		} else {
			var err error
			if f, err = p.js.PublishMsgAsync(&nats.Msg{Subject: SubjectPrefix + tok, Data: data}, jetstream.WithMsgID(id)); err != nil {
				return fmt.Errorf("publish message %d: %w", m.ID, err)
			}
		}
		s.inflight = append(s.inflight, sent{id: m.ID, size: len(data), ack: f, at: now})
		s.bytes += len(data)
		s.cursor = m.ID
		s.last = max(s.last, m.ID)
		n++
		if s.bytes >= p.cfg.WindowBytes {
			return errFull
		}
		return nil
	})
	switch {
	case errors.Is(err, errFull):
		return nil
	case err != nil:
		return err
	}
	if n < room {
		s.more = false // caught up, until the next wake-up or tick
	}
	return nil
}

// acked takes the head's acknowledgement: the position moves to it.
func (p *Publisher) acked(s *state, pa *jetstream.PubAck) {
	h := s.inflight[s.head]
	s.inflight[s.head] = sent{}
	s.head++
	s.bytes -= h.size
	s.acked = h.id
	st := p.cfg.Stats
	if pa != nil && pa.Duplicate {
		st.PublishDuplicates.Add(1)
	} else {
		st.Published.Add(1)
	}
	st.PublishLag.Store(max(0, s.last-s.acked))
	if s.failures > 0 {
		p.cfg.Logger.Info("publish: publishing again", "failures", s.failures, "from_id", h.id)
		s.failures, s.backoff = 0, 0
	}
}

// passOver moves the position over the messages at the head that were not
// published (too large for the server).
func (p *Publisher) passOver(s *state) {
	for s.waiting() > 0 && s.inflight[s.head].ack == nil {
		h := s.inflight[s.head]
		s.inflight[s.head] = sent{}
		s.head++
		s.bytes -= h.size
		s.acked = h.id
	}
}

// takeAcks takes every acknowledgement already in, in order, without waiting.
func (p *Publisher) takeAcks(s *state) {
	for p.passOver(s); s.waiting() > 0; p.passOver(s) {
		h := s.inflight[s.head].ack
		select {
		case pa := <-h.Ok():
			p.acked(s, pa)
		case err := <-h.Err():
			p.failed(s, err)
			return
		default:
			return
		}
	}
}

// failed abandons every publish not acknowledged and starts again from the
// position after a back-off: what JetStream did store of them is dropped
// there as a duplicate (Nats-Msg-Id) when it comes again.
func (p *Publisher) failed(s *state, err error) {
	p.cfg.Stats.PublishErrors.Add(1)
	s.failures++
	clear(s.inflight)
	s.inflight, s.head, s.bytes = s.inflight[:0], 0, 0
	s.cursor, s.more, s.stale = s.acked, true, true
	s.backoff = min(max(2*s.backoff, 100*time.Millisecond), 5*time.Second)
	s.retryAt = time.Now().Add(s.backoff)
	if n, ok := p.fail.allow(); ok {
		msg := "publish: publishing failed; retrying from the saved position"
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
			msg = "publish: no JetStream stream takes subjects " + SubjectPrefix + ">; create one (docs/scale.md)"
		}
		p.cfg.Logger.Warn(msg, "err", err, "from_id", s.acked+1, "failures", s.failures, "failures_not_logged", n)
	}
}

// save hands the position to the saver if it moved. It never waits: the
// saver takes the latest position when it is ready.
func (p *Publisher) save(s *state) {
	if s.acked <= s.saved {
		return
	}
	select {
	case <-p.saveCh: // an older position the saver has not taken yet
	default:
	}
	p.saveCh <- s.acked // only run sends: there is room now
	s.saved = s.acked
}

// saver writes the positions run hands it, in a goroutine of its own: a
// store write waits for the commit writer's lock, which a busy writer holds
// most of the time, and publishing must not wait for it. A position not saved
// is retried; if inlet stops before, the next start publishes again from the
// older one, and JetStream drops what it already holds (Nats-Msg-Id).
func (p *Publisher) saver(start int64) {
	defer close(p.saverDone)
	saved := start
	var limit logLimiter
	limit.every = time.Minute
	for want := range p.saveCh {
		for want > saved {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := p.pos.SetPublishPosition(ctx, p.cfg.Name, want)
			cancel()
			if err == nil {
				saved = want
				break
			}
			if n, ok := limit.allow(); ok {
				p.cfg.Logger.Warn("publish: position not saved; retrying", "position", want, "err", err, "failures_not_logged", n)
			}
			select {
			case w, ok := <-p.saveCh:
				if !ok { // stopping: the last position stays unsaved
					p.closeErr = fmt.Errorf("publish: save position %d: %w", want, err)
					return
				}
				want = max(want, w)
			case <-time.After(time.Second):
			}
		}
	}
}

// measure updates the lag: messages committed and not yet acknowledged.
func (p *Publisher) measure(s *state) {
	if last, err := p.r.LastID(p.ctx); err == nil {
		s.last = max(s.last, last)
	}
	p.cfg.Stats.PublishLag.Store(max(0, s.last-s.acked))
}

// logLimiter lets one log line through per period and counts the rest.
type logLimiter struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time
	held  int
}

// allow reports whether to log now, and how many lines it held back since
// the last one.
func (l *logLimiter) allow() (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); l.last.IsZero() || now.Sub(l.last) >= l.every {
		n := l.held
		l.last, l.held = now, 0
		return n, true
	}
	l.held++
	return 0, false
}
