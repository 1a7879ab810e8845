package httpapi

import (
	"errors"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inletdev/inlet"
)

const (
	streamChunkRows  = 1000
	streamChunkBytes = 1 << 20
	streamPing       = 15 * time.Second
)

// stream serves /api/stream. Live events come from the shared feed (feed.go),
// which reads each committed range once for every stream: events are exactly
// the committed rows, in id order. A stream whose events are no longer in the
// feed's ring (it resumed from an older Last-Event-ID, or fell behind) reads
// the store itself, from its own last id, in chunks read into memory before
// anything is written, until it is back in the ring's range: resume and live
// delivery meet without gap or repeat, a slow client never holds a read
// transaction open, and a stream holds at most one chunk in memory. A client
// that takes nothing for StreamWriteTimeout is dropped and ingestion never
// waits for it.
func (a *api) stream(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	device := r.URL.Query().Get("device")
	var after int64
	from := r.Header.Get("Last-Event-ID")
	if from == "" {
		from = r.URL.Query().Get("after_id")
	}
	if from != "" {
		id, err := strconv.ParseInt(from, 10, 64)
		if err != nil || id < 0 {
			writeError(w, http.StatusBadRequest, "Last-Event-ID/after_id "+strconv.Quote(from)+": want a message id")
			return
		}
		after = id
	} else {
		id, err := a.cfg.Reader.LastID(ctx)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		after = id
	}
	select {
	case a.streams <- struct{}{}:
		defer func() { <-a.streams }()
	default:
		writeError(w, http.StatusServiceUnavailable, "too many open streams ("+strconv.Itoa(cap(a.streams))+")")
		return
	}
	a.cfg.Stats.StreamSubscribers.Add(1)
	defer a.cfg.Stats.StreamSubscribers.Add(-1)
	ring := a.feed.subscribe()
	defer a.feed.unsubscribe(ring)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// An id-only event first: it sets the client's last event id (browsers and
	// inlet tail) to where this stream starts, so a reconnect before the first
	// message resumes from here instead of replaying or skipping anything.
	buf := []byte("retry: 1000\nid: " + strconv.FormatInt(after, 10) + "\n\n")
	var stopping sync.Mutex // orders Stop's deadline after any deadline send sets
	var stopped atomic.Bool
	done := make(chan struct{})
	defer close(done)
	go func() {
		// At shutdown, a write blocked on a stalled client ends at once
		// instead of waiting out its deadline.
		select {
		case <-a.cfg.Stop:
			stopping.Lock()
			stopped.Store(true)
			rc.SetWriteDeadline(time.Now())
			stopping.Unlock()
		case <-done:
		}
	}()
	send := func() bool {
		stopping.Lock()
		if stopped.Load() {
			stopping.Unlock()
			return false
		}
		rc.SetWriteDeadline(time.Now().Add(a.cfg.StreamWriteTimeout))
		stopping.Unlock()
		_, err := w.Write(buf)
		if err == nil {
			err = rc.Flush()
		}
		buf = buf[:0]
		if cap(buf) > 2*ringSendBytes {
			buf = nil // a chunk read from the store was big: don't keep a megabyte per idle stream
		}
		if err != nil {
			// net/http cancels the request context when a write fails, so the
			// deadline error itself is what tells a stalled client from a gone one.
			if errors.Is(err, os.ErrDeadlineExceeded) && !stopped.Load() {
				a.cfg.Stats.StreamDropped.Add(1)
				a.cfg.Logger.Warn("http: stream subscriber dropped: it took no data", "remote", r.RemoteAddr,
					"after", a.cfg.StreamWriteTimeout, "last_id", after)
			}
			return false
		}
		return true
	}
	if !send() {
		return
	}
	ping := time.NewTicker(streamPing)
	defer ping.Stop()
	for {
		var wait <-chan struct{}
		var base int64
		var err error
		buf, after, wait, base, err = ring.next(after, device, buf)
		if err == errBehind {
			// Behind the ring: read the store up to where the ring begins.
			var ok bool
			if after, ok = a.catchUp(w, r, after, base, device, &buf); !ok {
				return
			}
		} else if err != nil {
			return // the feed failed and logged it; the client resumes on reconnect
		}
		if len(buf) > 0 {
			if !send() {
				return
			}
			continue
		}
		if wait == nil {
			continue
		}
		select {
		case <-wait:
		case <-ping.C:
			buf = append(buf, ": ping\n\n"...)
			if !send() {
				return
			}
		case <-ctx.Done():
			return
		case <-a.cfg.Stop:
			return
		}
	}
}

// catchUp reads into *buf one chunk of the stored messages after `after` (of
// device, if set) and returns the id it has read up to. base is where the feed's
// ring begins: every message up to it is committed, so a read that ends
// before a full chunk has seen everything up to base.
func (a *api) catchUp(w http.ResponseWriter, r *http.Request, after, base int64, device string, buf *[]byte) (int64, bool) {
	ctx := r.Context()
	select {
	case a.feed.catchup <- struct{}{}:
	case <-ctx.Done():
		return after, false
	case <-a.cfg.Stop:
		return after, false
	}
	n, full := 0, false
	err := a.cfg.Reader.Messages(ctx, inlet.Query{AfterID: after, Device: device, Limit: streamChunkRows},
		func(m *inlet.Stored) error {
			*buf = appendEvent(*buf, m)
			n, after = n+1, m.ID
			if len(*buf) >= streamChunkBytes {
				full = true
				return errStop
			}
			return nil
		})
	<-a.feed.catchup
	if err != nil && err != errStop {
		if ctx.Err() == nil {
			a.cfg.Logger.Error("http: stream read failed", "err", err)
		}
		return after, false
	}
	if !full && n < streamChunkRows {
		after = max(after, base)
	}
	return after, true
}
