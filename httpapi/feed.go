package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/live"
	"github.com/inletdev/inlet/record"
)

// The feed's bounds (docs/http.md): the ring holds at most ringRows events and
// ringBytes of encoded events, whatever the number of streams. (Variables so
// that a test can make them small.)
var (
	ringRows  = 65536
	ringBytes = 16 << 20
)

const (
	feedReadRows  = 2048     // rows per read of the feed
	ringSendBytes = 64 << 10 // what a stream copies out of the ring per write
	ringScan      = 4096     // ring entries a filtered stream examines per look
	catchupReads  = 2        // store reads of streams behind the ring at once
	// While the server ingests a burst (more than yieldRecent messages
	// committed in 100 ms, that is 20,000/s, or more than yieldBacklog
	// received and not yet committed), the feed holds back for up to
	// yieldMax, looking again every yieldPoll: a burst is stored at full
	// speed, then shown, and under sustained heavy load streams get their
	// events once a second (docs/http.md).
	yieldRecent  = 2000
	yieldBacklog = 1024
	yieldMax     = time.Second
	yieldPoll    = 2 * time.Millisecond
)

// feed is the one reader of newly committed messages that every stream shares:
// after each commit signal it reads the committed range once, from the id it
// has read up to, encodes each message once as an event, and keeps the newest
// ones in a bounded ring. Streams copy their events out of the ring; a stream
// that falls behind the ring (or resumes from an older id) reads the store
// itself until it is back in the ring's range, a few at a time (catchup). So
// the store is read once per commit signal whatever the number of streams, and
// the memory is the ring's plus one chunk per stream.
//
// The feed runs only while streams are open: the first one starts a ring, the
// last one to leave stops it and its memory is released.
type feed struct {
	reader inlet.Reader
	hub    *live.Hub
	stats  *inlet.Stats
	stop   <-chan struct{}
	logger *slog.Logger

	catchup chan struct{} // a slot per store read of a stream behind the ring

	mu  sync.Mutex
	cur *ring // nil while no stream is open
}

func newFeed(r inlet.Reader, hub *live.Hub, stats *inlet.Stats, stop <-chan struct{}, logger *slog.Logger) *feed {
	return &feed{reader: r, hub: hub, stats: stats, stop: stop, logger: logger, catchup: make(chan struct{}, catchupReads)}
}

// backlog reports whether the server is ingesting a burst: many messages are
// queued for the writer or in the batch it is committing (received, and
// neither committed nor dropped as duplicates), or it has just committed many.
func (f *feed) backlog() bool {
	s := f.stats
	pending := s.MessagesTCP.Load() + s.MessagesUDP.Load() - s.Committed.Load() - s.Duplicates.Load()
	return s.QueueDepth.Load() > yieldBacklog || pending > yieldBacklog || f.hub.Recent() > yieldRecent
}

// yield waits, for at most yieldMax from since, while the commit writer has a
// backlog: streams are for watching, and storing comes first. It reports false
// if ctx ends.
func (f *feed) yield(ctx context.Context, since time.Time) bool {
	if !f.backlog() {
		return true
	}
	t := time.NewTicker(yieldPoll)
	defer t.Stop()
	for f.backlog() && time.Since(since) < yieldMax {
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// event is one message as a stream sends it.
type event struct {
	id     int64
	device string
	data   []byte // "id: N\ndata: {…}\n\n"; never modified once in the ring
}

// ring is the feed's window of committed messages while streams are open: every
// message with an id in (base, last], in id order.
type ring struct {
	quit chan struct{} // closed when the last stream leaves

	maxRows, maxBytes int // ringRows and ringBytes when it started

	mu    sync.RWMutex
	subs  int // guarded by feed.mu
	evs   []event
	head  int // index of the oldest event in evs
	n     int
	bytes int
	ready bool  // base is known
	base  int64 // the ring holds every message with id > base, up to last
	last  int64
	err   error         // the feed's read failed: its streams end
	more  chan struct{} // closed when the ring grows or fails; then replaced
}

// subscribe joins the ring, starting one if it is the first stream.
func (f *feed) subscribe() *ring {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		f.cur = &ring{quit: make(chan struct{}), maxRows: ringRows, maxBytes: ringBytes,
			evs: make([]event, min(1024, ringRows)), more: make(chan struct{})}
		go f.run(f.cur)
	}
	f.cur.subs++
	return f.cur
}

// unsubscribe leaves r; the last stream to leave stops it.
func (f *feed) unsubscribe(r *ring) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.subs--
	if r.subs == 0 {
		close(r.quit)
		if f.cur == r {
			f.cur = nil
		}
	}
}

// run reads committed messages into r until its last stream leaves.
func (f *feed) run(r *ring) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.quit:
		case <-f.stop:
		}
		cancel()
	}()
	fail := func(err error) {
		if ctx.Err() == nil {
			f.logger.Error("http: stream feed read failed; ending streams", "err", err)
		}
		f.mu.Lock()
		if f.cur == r {
			f.cur = nil // the next stream starts afresh
		}
		f.mu.Unlock()
		r.mu.Lock()
		r.err = err
		close(r.more)
		r.mu.Unlock()
	}
	changed := f.hub.Changed() // before LastID: nothing committed after it is missed
	last, err := f.reader.LastID(ctx)
	if err != nil {
		fail(err)
		return
	}
	r.mu.Lock()
	r.base, r.last, r.ready = last, last, true
	close(r.more)
	r.more = make(chan struct{})
	r.mu.Unlock()

	var arena []byte
	var evs []event
	signalled := time.Now()
	for {
		if !f.yield(ctx, signalled) {
			return
		}
		evs, arena = evs[:0], nil
		err := f.reader.Messages(ctx, inlet.Query{AfterID: last, Limit: feedReadRows}, func(m *inlet.Stored) error {
			start := len(arena)
			arena = appendEvent(arena, m)
			evs = append(evs, event{id: m.ID, device: m.Device, data: arena[start:len(arena):len(arena)]})
			return nil
		})
		if err != nil {
			fail(err)
			return
		}
		if len(evs) > 0 {
			// The arena may have moved while it grew: point each event into its
			// final array, so the ring shares one allocation per read.
			off := 0
			for i := range evs {
				n := len(evs[i].data)
				evs[i].data = arena[off : off+n : off+n]
				off += n
			}
			last = evs[len(evs)-1].id
			r.publish(evs)
			if len(evs) == feedReadRows {
				continue // more are waiting
			}
		}
		select {
		case <-changed:
			changed = f.hub.Changed()
			signalled = time.Now()
		case <-ctx.Done():
			return
		}
	}
}

// appendEvent appends m as a stream event.
func appendEvent(buf []byte, m *inlet.Stored) []byte {
	buf = append(buf, "id: "...)
	buf = strconv.AppendInt(buf, m.ID, 10)
	buf = append(buf, "\ndata: "...)
	buf = record.AppendJSON(buf, m)
	return append(buf, "\n\n"...)
}

// publish appends evs, dropping the oldest events beyond the ring's bounds, and
// wakes the streams.
func (r *ring) publish(evs []event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range evs {
		if r.n == len(r.evs) && len(r.evs) < r.maxRows {
			// Grow: a quiet server's ring stays small.
			grown := make([]event, min(2*len(r.evs), r.maxRows))
			for i := range r.n {
				grown[i] = r.evs[(r.head+i)%len(r.evs)]
			}
			r.evs, r.head = grown, 0
		}
		for r.n > 0 && (r.n == len(r.evs) || r.bytes+len(e.data) > r.maxBytes) {
			old := &r.evs[r.head]
			r.base = old.id
			r.bytes -= len(old.data)
			*old = event{}
			r.head = (r.head + 1) % len(r.evs)
			r.n--
		}
		r.evs[(r.head+r.n)%len(r.evs)] = e
		r.n++
		r.bytes += len(e.data)
		r.last = e.id
	}
	close(r.more)
	r.more = make(chan struct{})
}

// errBehind tells a stream that the ring no longer holds the events after its
// last id: it reads the store itself.
var errBehind = errors.New("behind the ring")

// next appends to buf the events after `after` of device ("" for all), up to
// ringSendBytes, and returns the id it has looked up to. With nothing new it
// returns a channel closed when there may be. It returns errBehind when the
// events after `after` have left the ring (base: the oldest id it still covers
// from), and the feed's error if it failed.
func (r *ring) next(after int64, device string, buf []byte) (out []byte, upTo int64, wait <-chan struct{}, base int64, err error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.err != nil {
		return buf, after, nil, 0, r.err
	}
	if !r.ready {
		return buf, after, r.more, 0, nil
	}
	if after < r.base {
		return buf, after, nil, r.base, errBehind
	}
	// The first event after `after`: ids are increasing around the ring.
	i := sort.Search(r.n, func(i int) bool { return r.evs[(r.head+i)%len(r.evs)].id > after })
	upTo = after
	for scanned := 0; i < r.n && scanned < ringScan; i, scanned = i+1, scanned+1 {
		e := &r.evs[(r.head+i)%len(r.evs)]
		if device != "" && e.device != device {
			upTo = e.id
			continue
		}
		if len(buf) > 0 && len(buf)+len(e.data) > ringSendBytes {
			break
		}
		buf = append(buf, e.data...)
		upTo = e.id
	}
	if upTo == after && i >= r.n {
		return buf, after, r.more, 0, nil
	}
	return buf, upTo, nil, 0, nil
}
