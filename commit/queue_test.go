package commit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet"
)

// The queue is internal to the writer; these tests drive it directly.

func qmsgs(device string, sizes ...int) []inlet.Message {
	out := make([]inlet.Message, len(sizes))
	for i, n := range sizes {
		out[i] = inlet.Message{Device: device, Payload: make([]byte, n)}
	}
	return out
}

func size(msgs []inlet.Message) int {
	n := 0
	for _, m := range msgs {
		n += len(m.Payload)
	}
	return n
}

func tryPut(t *testing.T, q *queue, msgs []inlet.Message) bool {
	t.Helper()
	ok, err := q.tryPut(msgs, size(msgs))
	if err != nil {
		t.Fatalf("tryPut: %v", err)
	}
	return ok
}

func TestQueueBoundedByCount(t *testing.T) {
	q := newQueue(3, 1<<20, 100, nil)
	if !tryPut(t, q, qmsgs("a", 1, 1)) || !tryPut(t, q, qmsgs("a", 1)) {
		t.Fatal("3 messages do not fit a queue of 3")
	}
	if tryPut(t, q, qmsgs("a", 1)) {
		t.Fatal("a 4th message fit a queue of 3")
	}
	if n := q.depth.Load(); n != 3 {
		t.Fatalf("depth %d, want 3", n)
	}
	batch, empty := q.pop(nil, 2)
	if len(batch) != 2 || empty {
		t.Fatalf("pop(2): %d messages, empty %v", len(batch), empty)
	}
	if !tryPut(t, q, qmsgs("a", 1, 1)) {
		t.Fatal("2 messages do not fit after 2 were taken")
	}
	if tryPut(t, q, qmsgs("a", 1)) {
		t.Fatal("over the count after a pop")
	}
}

func TestQueueBoundedByBytes(t *testing.T) {
	q := newQueue(100, 10, 100, nil)
	if !tryPut(t, q, qmsgs("a", 6)) {
		t.Fatal("6 bytes do not fit 10")
	}
	if tryPut(t, q, qmsgs("a", 5)) {
		t.Fatal("11 bytes fit 10")
	}
	if !tryPut(t, q, qmsgs("a", 4)) {
		t.Fatal("10 bytes do not fit 10")
	}
	q.pop(nil, 1) // the 6 bytes
	if !tryPut(t, q, qmsgs("a", 6)) {
		t.Fatal("bytes taken are not given back")
	}
}

// An empty queue takes anything: a put larger than the bounds must not wait
// for ever.
func TestQueueEmptyTakesAnything(t *testing.T) {
	q := newQueue(2, 10, 100, nil)
	if !tryPut(t, q, qmsgs("a", 50, 50, 50)) {
		t.Fatal("an empty queue refused an oversized put")
	}
	if tryPut(t, q, qmsgs("a", 1)) {
		t.Fatal("a queue over its bounds took more")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q.pop(nil, 10)
	big := qmsgs("b", 100, 100, 100)
	if err := q.put(ctx, big, size(big)); err != nil {
		t.Fatalf("put into an empty queue: %v", err)
	}
}

// put waits for room; the wait ends with a pop, with its context, or with close.
func TestQueuePutWaits(t *testing.T) {
	q := newQueue(1, 100, 100, nil)
	tryPut(t, q, qmsgs("a", 1))

	put := func(ctx context.Context) chan error {
		done := make(chan error, 1)
		go func() { m := qmsgs("b", 1); done <- q.put(ctx, m, 1) }()
		return done
	}
	// Freed by a pop.
	done := put(context.Background())
	select {
	case err := <-done:
		t.Fatalf("put into a full queue returned at once: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	batch, _ := q.pop(nil, 10)
	if len(batch) != 1 || batch[0].Device != "a" {
		t.Fatalf("pop: %+v", batch)
	}
	if err := <-done; err != nil {
		t.Fatalf("put after a pop: %v", err)
	}
	// Ended by its context.
	ctx, cancel := context.WithCancel(context.Background())
	done = put(ctx)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("put with its context cancelled: %v", err)
	}
	// Ended by close; what is queued stays to be taken.
	done = put(context.Background())
	q.close()
	if err := <-done; !errors.Is(err, inlet.ErrClosed) {
		t.Fatalf("put released by close: %v, want ErrClosed", err)
	}
	if _, err := q.tryPut(qmsgs("c", 1), 1); !errors.Is(err, inlet.ErrClosed) {
		t.Fatalf("tryPut after close: %v, want ErrClosed", err)
	}
	if n, closed := q.state(); n != 1 || !closed {
		t.Fatalf("after close: %d queued, closed %v", n, closed)
	}
	if batch, empty := q.pop(nil, 10); len(batch) != 1 || batch[0].Device != "b" || !empty {
		t.Fatalf("pop after close: %+v", batch)
	}
}

// pop hands over everything waiting, up to max, in order, with receive times
// that follow queue order.
func TestQueuePopOrderAndStamps(t *testing.T) {
	q := newQueue(100, 1<<20, 100, nil)
	for i := range 10 {
		tryPut(t, q, qmsgs(strconv.Itoa(i), 1))
	}
	a, empty := q.pop(nil, 4)
	if len(a) != 4 || empty {
		t.Fatalf("pop(4): %d, empty %v", len(a), empty)
	}
	b, empty := q.pop(nil, 100)
	if len(b) != 6 || !empty {
		t.Fatalf("pop(100): %d, empty %v", len(b), empty)
	}
	all := append(a, b...)
	for i, m := range all {
		if m.Device != strconv.Itoa(i) {
			t.Fatalf("message %d is %q", i, m.Device)
		}
		if m.ReceivedAt == 0 || (i > 0 && m.ReceivedAt < all[i-1].ReceivedAt) {
			t.Fatalf("receive times out of queue order: %d after %d", m.ReceivedAt, all[i-1].ReceivedAt)
		}
	}
	if batch, empty := q.pop(b[:0], 10); len(batch) != 0 || !empty {
		t.Fatalf("pop of an empty queue: %d", len(batch))
	}
}

// The consumer is woken when the queue becomes non-empty or reaches a batch,
// and a deadline or close ends its wait.
func TestQueueWaitMore(t *testing.T) {
	q := newQueue(100, 1<<20, 3, nil)
	if q.waitMore(time.Now().Add(10 * time.Millisecond)) {
		t.Fatal("waitMore on an empty queue reported messages")
	}
	go func() {
		time.Sleep(5 * time.Millisecond)
		m := qmsgs("a", 1)
		q.tryPut(m, 1)
	}()
	if !q.waitMore(time.Now().Add(10 * time.Second)) {
		t.Fatal("waitMore missed a put")
	}
	q.pop(nil, 10)
	// The wake-up of a put already taken is not mistaken for a new one.
	if q.waitMore(time.Now().Add(10 * time.Millisecond)) {
		t.Fatal("waitMore reported a message already taken")
	}
	go func() { time.Sleep(5 * time.Millisecond); q.close() }()
	if q.waitMore(time.Now().Add(10 * time.Second)) {
		t.Fatal("waitMore on a closed queue reported messages")
	}
	q.wait() // returns: closed
}

// Many producers, blocking and not, and one consumer: nothing is lost or
// reordered within a producer, and the queue never holds more than its bounds.
func TestQueueConcurrent(t *testing.T) {
	const producers, each, maxLen = 8, 2000, 64
	q := newQueue(maxLen, 1<<20, 16, nil)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			dev := fmt.Sprintf("p%d", p)
			for i := 0; i < each; {
				m := []inlet.Message{{Device: dev, Seq: int64(i + 1), Payload: []byte("x")}}
				if p%2 == 0 {
					if err := q.put(context.Background(), m, 1); err != nil {
						t.Error(err)
						return
					}
				} else if ok, err := q.tryPut(m, 1); err != nil {
					t.Error(err)
					return
				} else if !ok {
					continue
				}
				i++
			}
		})
	}
	last := make(map[string]int64)
	got := 0
	var batch []inlet.Message
	for got < producers*each {
		q.wait()
		if n, _ := q.state(); n > maxLen {
			t.Fatalf("queue holds %d, bound %d", n, maxLen)
		}
		batch, _ = q.pop(batch[:0], 10)
		for _, m := range batch {
			if m.Seq != last[m.Device]+1 {
				t.Fatalf("%s: seq %d after %d", m.Device, m.Seq, last[m.Device])
			}
			last[m.Device] = m.Seq
		}
		got += len(batch)
	}
	wg.Wait()
	if n, _ := q.state(); n != 0 {
		t.Fatalf("%d left over", n)
	}
}
