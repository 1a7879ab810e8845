package commit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/commit"
)

// memStore is an inlet.Store in memory whose commits can be made to fail.
type memStore struct {
	mu      sync.Mutex
	fail    atomic.Bool
	rows    []inlet.Message
	devices map[string]inlet.Device
	boots   map[string]inlet.Boot // by device NUL boot
	lookups int                   // Boot calls
	batches int
}

func (s *memStore) Commit(_ context.Context, b *inlet.Batch) error {
	if s.fail.Load() {
		return errors.New("disk full")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range b.Messages {
		m.Payload = append([]byte(nil), m.Payload...)
		s.rows = append(s.rows, m)
	}
	if s.devices == nil {
		s.devices = make(map[string]inlet.Device)
	}
	if s.boots == nil {
		s.boots = make(map[string]inlet.Boot)
	}
	for _, bt := range b.Boots {
		bt.Missing = append([]inlet.SeqRange(nil), bt.Missing...)
		s.boots[bt.Device+"\x00"+bt.Boot] = bt
	}
	for _, d := range b.Devices {
		s.devices[d.ID] = d
	}
	s.batches++
	return nil
}

func (s *memStore) Devices(context.Context) ([]inlet.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []inlet.Device
	for _, d := range s.devices {
		out = append(out, d)
	}
	return out, nil
}

func (s *memStore) Boot(_ context.Context, device, boot string) (inlet.Boot, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	b, ok := s.boots[device+"\x00"+boot]
	b.Missing = append([]inlet.SeqRange(nil), b.Missing...)
	return b, ok, nil
}

func (s *memStore) Close() error { return nil }

func (s *memStore) lookupCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups
}

func (s *memStore) rowsCopy() []inlet.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]inlet.Message(nil), s.rows...)
}

func (s *memStore) device(id string) inlet.Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.devices[id]
}

func (s *memStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

func msgs(device string, from, n int) []inlet.Message {
	out := make([]inlet.Message, n)
	for i := range out {
		out[i] = inlet.Message{Device: device, Transport: inlet.TCP, Payload: []byte(fmt.Sprint(from + i))}
	}
	return out
}

func TestWriterCommitsAndAccounts(t *testing.T) {
	st := &memStore{}
	stats := new(inlet.Stats)
	w, err := commit.New(context.Background(), st, commit.Config{Stats: stats})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := w.Submit(context.Background(), msgs("d1", 1+i*10, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Submit(context.Background(), msgs("d1", 200, 1)); err != nil { // a jump
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := st.count(); n != 101 || stats.Committed.Load() != 101 {
		t.Fatalf("stored %d, committed %d; want 101", n, stats.Committed.Load())
	}
	d := st.devices["d1"]
	if d.Messages != 101 || d.Gaps != 1 || d.Missing != 99 {
		t.Fatalf("device %+v", d)
	}
	for i, m := range st.rows {
		if m.ReceivedAt == 0 || string(m.Fields) != fmt.Sprintf(`{"value":%s}`, m.Payload) || !m.IsCounter {
			t.Fatalf("row %d: %+v", i, m)
		}
	}
	if err := w.Submit(context.Background(), msgs("d1", 1, 1)); !errors.Is(err, inlet.ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
}

// Device state continues from what the store holds.
func TestWriterContinuesDeviceState(t *testing.T) {
	st := &memStore{devices: map[string]inlet.Device{"d": {ID: "d", Messages: 5, Run: inlet.CounterRun{Active: true, Low: 1, High: 5, Seen: 31}}}}
	w, err := commit.New(context.Background(), st, commit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w.Submit(context.Background(), msgs("d", 6, 3))
	w.Close(context.Background())
	if d := st.devices["d"]; d.Messages != 8 || d.Gaps != 0 || d.Run.High != 8 {
		t.Fatalf("device %+v", d)
	}
}

// A failing store: the writer retries, reports unhealthy, pushes back on Submit
// once the queue is full, makes TrySubmit refuse, and loses nothing when the
// store recovers.
func TestWriterBackpressureAndRetry(t *testing.T) {
	st := &memStore{}
	st.fail.Store(true)
	stats := new(inlet.Stats)
	w, err := commit.New(context.Background(), st, commit.Config{Stats: stats, MaxBatch: 10, MaxQueue: 50})
	if err != nil {
		t.Fatal(err)
	}
	var submitted atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			if err := w.Submit(context.Background(), msgs("d", 1+i*10, 10)); err != nil {
				t.Error(err)
				return
			}
			submitted.Add(10)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for stats.StoreErrors.Load() < 2 || submitted.Load() < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("errors %d, submitted %d", stats.StoreErrors.Load(), submitted.Load())
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	// Ten in the failing batch and at most MaxQueue waiting: the producer is blocked.
	if n := submitted.Load(); n > 60 {
		t.Fatalf("submitted %d while the store was failing: the queue is not bounded", n)
	}
	if stats.StoreHealthy.Load() {
		t.Fatal("healthy while commits fail")
	}
	if ok, _ := w.TrySubmit(msgs("u", 1, 1)); ok {
		t.Fatal("TrySubmit took a message into a full queue")
	}
	st.fail.Store(false)
	<-done
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := st.count(); n != 200 {
		t.Fatalf("stored %d, want 200", n)
	}
	if !stats.StoreHealthy.Load() {
		t.Fatal("unhealthy after recovery")
	}
	if d := st.devices["d"]; d.Gaps != 0 || d.Messages != 200 || d.Duplicates != 0 {
		t.Fatalf("device %+v", d)
	}
}

// Close gives up on a store that never recovers when its context ends, and says
// how much was not stored.
func TestWriterCloseGivesUp(t *testing.T) {
	st := &memStore{}
	st.fail.Store(true)
	w, err := commit.New(context.Background(), st, commit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w.Submit(context.Background(), msgs("d", 1, 5))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = w.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "5 messages not stored") {
		t.Fatalf("close with a failing store: %v, want an error naming 5 messages", err)
	}
}

// ackedMsgs is msgs in acknowledged mode: seqs from..from+n-1 of boot "b".
func ackedMsgs(device string, from, n int) []inlet.Message {
	out := msgs(device, from, n)
	for i := range out {
		out[i].Boot, out[i].Seq = "b", int64(from+i)
	}
	return out
}

// Under sustained traffic a batch of acknowledged messages keeps gathering for
// the commit interval instead of committing each trickle on its own; an
// isolated one commits at once.
func TestWriterBatchPolicy(t *testing.T) {
	st := &memStore{}
	w, err := commit.New(context.Background(), st, commit.Config{Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())

	// Isolated: committed long before the (deliberately long) interval.
	start := time.Now()
	w.Submit(context.Background(), ackedMsgs("a", 1, 1))
	for st.count() < 1 {
		if time.Since(start) > 40*time.Millisecond {
			t.Fatalf("an isolated message waited %s; it should commit at once", time.Since(start))
		}
		time.Sleep(100 * time.Microsecond)
	}

	// Sustained: 600 single messages over about 300 ms.
	st.mu.Lock()
	before := st.batches
	st.mu.Unlock()
	trickle := time.Now()
	for i := range 600 {
		w.Submit(context.Background(), ackedMsgs("b", i+1, 1))
		time.Sleep(500 * time.Microsecond)
	}
	for st.count() < 601 {
		time.Sleep(time.Millisecond)
	}
	took := time.Since(trickle)
	st.mu.Lock()
	batches := st.batches - before
	st.mu.Unlock()
	// One batch per interval of the trickle, about (a loaded machine stretches
	// the trickle: the bound follows it); committing each message on its own
	// would take 600.
	if limit := max(60, 2*int(took/(50*time.Millisecond))+4); batches > limit {
		t.Errorf("600 messages over %s took %d batches; a 50 ms interval should gather them into at most %d", took, batches, limit)
	}
	t.Logf("600 trickled messages over %s in %d batches", took, batches)
}

// Plain messages, which nothing waits on, gather for PlainInterval: a trickle
// commits in about one batch per interval even when each message is isolated,
// an acknowledged message ends the gathering at once, and Close commits what
// is gathering without waiting for the interval.
func TestWriterPlainBatchPolicy(t *testing.T) {
	st := &memStore{}
	w, err := commit.New(context.Background(), st, commit.Config{Interval: time.Millisecond, PlainInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Isolated plain messages, 10 ms apart: more than the interval apart, so
	// with the acknowledged policy each would commit on its own.
	start := time.Now()
	for i := range 20 {
		w.Submit(context.Background(), msgs("p", i+1, 1))
		time.Sleep(10 * time.Millisecond)
	}
	for st.count() < 20 {
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	st.mu.Lock()
	batches := st.batches
	st.mu.Unlock()
	if limit := 2*int(took/(300*time.Millisecond)) + 2; batches > limit {
		t.Errorf("20 plain messages over %s took %d batches; a 300 ms plain interval should gather them into at most %d", took, batches, limit)
	}

	// An acknowledged message joins a gathering plain batch and commits it
	// within its own (1 ms) interval, not the plain one.
	w.Submit(context.Background(), msgs("p", 21, 1))
	time.Sleep(20 * time.Millisecond)
	ackAt := time.Now()
	w.Submit(context.Background(), ackedMsgs("q", 1, 1))
	for st.count() < 22 {
		time.Sleep(100 * time.Microsecond)
	}
	if d := time.Since(ackAt); d > 200*time.Millisecond {
		t.Errorf("an acknowledged message behind a gathering plain batch waited %s", d)
	}

	// Close does not wait out the plain interval.
	w.Submit(context.Background(), msgs("p", 22, 1))
	closeAt := time.Now()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st.count() != 23 {
		t.Fatalf("after Close: %d stored, want 23", st.count())
	}
	if d := time.Since(closeAt); d > 250*time.Millisecond {
		t.Errorf("Close waited %s for a gathering plain batch", d)
	}
}
