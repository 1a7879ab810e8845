package commit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inletdev/inlet"
)

// queue holds the messages waiting for the writer (after nats-server's ipqueue).
// It is bounded by count and by payload bytes; a producer either waits for room
// (put: a TCP reader, whose device then feels the backpressure) or is told at
// once that there is none (tryPut: a UDP datagram, or a read on the accept
// goroutine). The consumer takes everything waiting, up to a batch, in one go.
//
// An empty queue takes any put, however large: no single submission can wait
// for a room it will never have.
type queue struct {
	maxLen   int           // messages
	maxBytes int           // payload bytes
	batch    int           // a queue this long wakes the consumer, which may be gathering
	depth    *atomic.Int64 // the queue's length, published for /metrics

	mu     sync.Mutex
	items  []inlet.Message
	bytes  int
	space  chan struct{} // closed when the queue shrinks or closes; then replaced
	closed bool

	ready chan struct{} // capacity 1: the queue became non-empty, reached a batch, or closed
}

func newQueue(maxLen, maxBytes, batch int, depth *atomic.Int64) *queue {
	if depth == nil {
		depth = new(atomic.Int64)
	}
	return &queue{maxLen: maxLen, maxBytes: maxBytes, batch: batch, depth: depth,
		space: make(chan struct{}), ready: make(chan struct{}, 1)}
}

// roomLocked reports whether n messages of size payload bytes fit now.
func (q *queue) roomLocked(n, size int) bool {
	return len(q.items) == 0 || (len(q.items)+n <= q.maxLen && q.bytes+size <= q.maxBytes)
}

// put appends msgs (of size payload bytes in all), waiting while there is no
// room. It returns ctx's error if ctx ends first, and inlet.ErrClosed once the
// queue is closed.
func (q *queue) put(ctx context.Context, msgs []inlet.Message, size int) error {
	q.mu.Lock()
	for !q.closed && !q.roomLocked(len(msgs), size) {
		space := q.space
		q.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
		q.mu.Lock()
	}
	return q.appendLocked(msgs, size)
}

// room reports whether n messages of size payload bytes would fit now (or the
// queue is closed, which a put reports).
func (q *queue) room(n, size int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed || q.roomLocked(n, size)
}

// tryPut appends msgs if they fit now, and reports whether it did.
func (q *queue) tryPut(msgs []inlet.Message, size int) (bool, error) {
	q.mu.Lock()
	if !q.closed && !q.roomLocked(len(msgs), size) {
		q.mu.Unlock()
		return false, nil
	}
	return true, q.appendLocked(msgs, size)
}

// appendLocked appends msgs, stamping their receive time, and unlocks.
func (q *queue) appendLocked(msgs []inlet.Message, size int) error {
	if q.closed {
		q.mu.Unlock()
		return inlet.ErrClosed
	}
	// Stamped under the lock, so received_at follows queue order; rows leave
	// that order only within one batch (sqlite's time search relies on it).
	now := time.Now().UnixNano()
	for i := range msgs {
		msgs[i].ReceivedAt = now
	}
	wasEmpty := len(q.items) == 0
	q.items = append(q.items, msgs...)
	q.bytes += size
	full := len(q.items) >= q.batch
	q.depth.Store(int64(len(q.items)))
	q.mu.Unlock()
	// The consumer needs waking only when it may be idle (the queue was empty)
	// or when a gathering batch can fill up; not for every message.
	if wasEmpty || full {
		q.signal()
	}
	return nil
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop moves up to max messages onto batch and reports whether the queue was
// left empty. Producers waiting for room are woken.
func (q *queue) pop(batch []inlet.Message, max int) ([]inlet.Message, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := min(max, len(q.items))
	if k == 0 {
		return batch, true
	}
	if len(batch) == 0 && k == len(q.items) {
		// Hand the whole queue over and keep the batch's old array for the next queue.
		batch, q.items = q.items, batch[:0]
	} else {
		batch = append(batch, q.items[:k]...)
		rest := copy(q.items, q.items[k:])
		clear(q.items[rest:])
		q.items = q.items[:rest]
	}
	for i := len(batch) - k; i < len(batch); i++ {
		q.bytes -= len(batch[i].Payload)
	}
	q.depth.Store(int64(len(q.items)))
	close(q.space)
	q.space = make(chan struct{})
	return batch, len(q.items) == 0
}

// state reports the queue's length and whether it is closed.
func (q *queue) state() (n int, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items), q.closed
}

// wait waits until the queue has messages or is closed.
func (q *queue) wait() {
	for {
		if n, closed := q.state(); n > 0 || closed {
			return
		}
		<-q.ready
	}
}

// waitMore waits until the queue has messages again or the deadline passes, and
// reports whether there are messages to take. Closing ends the wait. A wake-up
// left over from messages already taken is not mistaken for new ones.
func (q *queue) waitMore(deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		n, closed := q.state()
		if n > 0 || closed {
			return n > 0 && !closed
		}
		select {
		case <-q.ready:
		case <-t.C:
			return false
		}
	}
}

// close makes every later put fail with inlet.ErrClosed, releases the producers
// waiting for room, and wakes the consumer. What is queued stays to be taken.
func (q *queue) close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.space)
		q.space = make(chan struct{})
	}
	q.mu.Unlock()
	q.signal()
}
