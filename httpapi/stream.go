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
	"github.com/inletdev/inlet/record"
)

const (
	streamChunkRows  = 1000
	streamChunkBytes = 1 << 20
	streamPing       = 15 * time.Second
)

// stream serves /api/stream. Each subscriber reads the store itself, from its own
// last id, woken by the hub after commits: events are therefore exactly the
// committed rows, in id order, resume (Last-Event-ID) is the same read as live
// delivery, and a subscriber holds at most one chunk in memory. Rows are read
// into memory before anything is written, so a slow client never holds a read
// transaction open; a client that takes nothing for StreamWriteTimeout is
// dropped and ingestion never waits for it.
func (a *api) stream(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := inlet.Query{Device: r.URL.Query().Get("device"), Limit: streamChunkRows}
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
		q.AfterID = id
	} else {
		id, err := a.cfg.Reader.LastID(ctx)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		q.AfterID = id
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

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// An id-only event first: it sets the client's last event id (browsers and
	// inlet tail) to where this stream starts, so a reconnect before the first
	// message resumes from here instead of replaying or skipping anything.
	buf := []byte("retry: 1000\nid: " + strconv.FormatInt(q.AfterID, 10) + "\n\n")
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
		if cap(buf) > 64<<10 {
			buf = nil // a backlog chunk was big: don't keep a megabyte per idle stream
		}
		if err != nil {
			// net/http cancels the request context when a write fails, so the
			// deadline error itself is what tells a stalled client from a gone one.
			if errors.Is(err, os.ErrDeadlineExceeded) && !stopped.Load() {
				a.cfg.Stats.StreamDropped.Add(1)
				a.cfg.Logger.Warn("http: stream subscriber dropped: it took no data", "remote", r.RemoteAddr,
					"after", a.cfg.StreamWriteTimeout, "last_id", q.AfterID)
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
		changed := a.cfg.Hub.Changed() // before the read: a commit after it wakes us
		gen := a.cfg.Hub.Gen(q.Device)
		n, last := 0, q.AfterID
		err := a.cfg.Reader.Messages(ctx, q, func(m *inlet.Stored) error {
			buf = append(buf, "id: "...)
			buf = strconv.AppendInt(buf, m.ID, 10)
			buf = append(buf, "\ndata: "...)
			buf = record.AppendJSON(buf, m)
			buf = append(buf, "\n\n"...)
			n, last = n+1, m.ID
			if len(buf) >= streamChunkBytes {
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			if ctx.Err() == nil {
				a.cfg.Logger.Error("http: stream read failed", "err", err)
			}
			return
		}
		if n > 0 {
			if !send() {
				return
			}
			q.AfterID = last
			if n == streamChunkRows || err == errStop {
				continue // more rows are waiting
			}
		}
		// Wait until this stream's device (or, unfiltered, anything) commits:
		// a stream of a quiet device does not query the store on every commit.
	wait:
		select {
		case <-changed:
			if a.cfg.Hub.Gen(q.Device) == gen {
				changed = a.cfg.Hub.Changed()
				if a.cfg.Hub.Gen(q.Device) == gen {
					goto wait
				}
			}
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
