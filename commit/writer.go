// Package commit owns the group-commit path between the listeners and the store:
// a bounded queue that pushes back on producers, batches committed in one
// transaction each, the per-device loss accounting updated in that same
// transaction, and retries when the store fails. It never acknowledges or
// publishes a message before the batch holding it has committed.
package commit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/payload"
)

// Config sets the batch policy and the queue bounds.
type Config struct {
	// Interval bounds how long a batch gathers. An isolated message commits at
	// once; under sustained traffic (the previous commit ended less than an
	// interval ago) a batch keeps gathering until the interval ends or it is
	// full, so a busy server commits once per interval rather than once per fsync.
	Interval      time.Duration
	MaxBatch      int // messages in one transaction
	MaxQueue      int // messages waiting for the writer
	MaxQueueBytes int // payload bytes waiting for the writer

	Logger *slog.Logger
	Stats  *inlet.Stats
	// OnCommit, when set, is called in the writer goroutine after each batch has
	// committed. It must not keep b or its messages after returning.
	OnCommit func(b *inlet.Batch)
	// PlainInterval bounds how long a batch of plain-mode messages only gathers
	// (default 500 ms). Nothing waits on a plain message's commit, and a longer
	// batch writes far fewer bytes per message at low rates (docs/reliability.md
	// says what a crash may lose); a batch with an acknowledged message commits
	// as Interval says.
	PlainInterval time.Duration
	// BootIdle is how long an acknowledged-mode sequence other than its
	// device's latest stays in memory unseen (default 10 min). A device that
	// wakes from deep sleep starts a new boot each time; the state of old ones
	// is read back from the store if they send again (an outbox resending after
	// a reboot).
	BootIdle time.Duration
}

// DefaultConfig holds the writer's defaults (the --commit-interval default in
// docs/cli.md among them); a zero field of a Config passed to New takes its value
// from here, and MaxQueue, when zero, is four batches.
func DefaultConfig() Config {
	return Config{
		Interval:      5 * time.Millisecond,
		PlainInterval: 500 * time.Millisecond,
		MaxBatch:      8192,
		MaxQueue:      4 * 8192,
		MaxQueueBytes: 16 << 20,
		BootIdle:      10 * time.Minute,
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.Interval <= 0 {
		c.Interval = d.Interval
	}
	if c.PlainInterval <= 0 {
		c.PlainInterval = d.PlainInterval
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = d.MaxBatch
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 4 * c.MaxBatch
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = d.MaxQueueBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.BootIdle <= 0 {
		c.BootIdle = d.BootIdle
	}
	if c.Stats == nil {
		c.Stats = new(inlet.Stats)
	}
}

// Writer is the single goroutine that writes to a store.
type Writer struct {
	cfg    Config
	store  inlet.Store
	shared inlet.AccountingStore // store, when several writers share it

	queue    *queue
	inflight atomic.Int64 // messages in the batch being committed

	abort   context.CancelFunc // cancels retries after Close gives up
	ctx     context.Context
	done    chan struct{}
	devices map[string]*inlet.Device
	boots   map[bootKey]*inlet.Boot // recent sequences; older ones are in the store
	evicted time.Time               // when idle boots were last dropped from memory

	durMu   sync.RWMutex
	durable map[bootKey]int64 // Boot.Durable() as committed, for hello answers
}

type bootKey = inlet.BootKey

// ack is one acknowledgement to give after the batch commits, in stream order.
type ack struct {
	to  inlet.Acker
	seq int64
	at  int64 // when the message entered the queue, for the ack latency
}

// New starts a writer over store, loading the device state it continues from.
func New(ctx context.Context, store inlet.Store, cfg Config) (*Writer, error) {
	cfg.setDefaults()
	devs, err := store.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("commit: load devices: %w", err)
	}
	// Each device's latest sequence; older ones are read back when used.
	var boots []inlet.Boot
	for i := range devs {
		if devs[i].LastBoot == "" {
			continue
		}
		b, ok, err := store.Boot(ctx, devs[i].ID, devs[i].LastBoot)
		if err != nil {
			return nil, fmt.Errorf("commit: load boots: %w", err)
		}
		if ok {
			boots = append(boots, b)
		}
	}
	w := &Writer{
		cfg:     cfg,
		store:   store,
		queue:   newQueue(cfg.MaxQueue, cfg.MaxQueueBytes, cfg.MaxBatch, &cfg.Stats.QueueDepth),
		done:    make(chan struct{}),
		devices: make(map[string]*inlet.Device, len(devs)),
		boots:   make(map[bootKey]*inlet.Boot, len(boots)),
		durable: make(map[bootKey]int64, len(boots)),
	}
	for i := range devs {
		d := devs[i]
		w.devices[d.ID] = &d
	}
	for i := range boots {
		b := boots[i]
		k := bootKey{Device: b.Device, Boot: b.Boot}
		w.boots[k] = &b
		w.durable[k] = b.Durable()
	}
	w.shared, _ = store.(inlet.AccountingStore)
	w.ctx, w.abort = context.WithCancel(context.Background())
	cfg.Stats.StoreHealthy.Store(true)
	go w.run()
	return w, nil
}

// derive fills in the derived fields of msgs, in the caller's goroutine so that
// parsing spreads over the listeners' cores rather than the writer's one.
func derive(msgs []inlet.Message) int {
	var n int
	for i := range msgs {
		n += len(msgs[i].Payload)
	}
	// One arena for all the fields. A slice taken before append grows the arena
	// keeps pointing at the old array, whose bytes stay as written.
	arena := make([]byte, 0, n+16*len(msgs))
	for i := range msgs {
		m := &msgs[i]
		start := len(arena)
		arena, m.Counter, m.IsCounter = payload.AppendFields(arena, m.Payload)
		if len(arena) > start {
			m.Fields = arena[start:len(arena):len(arena)]
		}
	}
	return n
}

// Submit queues msgs for the next batch, blocking while the queue is full (the
// backpressure a TCP reader passes on to its device). The writer takes ownership
// of msgs' payloads. It returns ctx's error if ctx ends first, and inlet.ErrClosed
// once Close has begun.
func (w *Writer) Submit(ctx context.Context, msgs []inlet.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	return w.queue.put(ctx, msgs, derive(msgs))
}

// TrySubmit queues msgs if the queue has room and reports whether it did; a UDP
// listener drops (and counts) what does not fit rather than wait, and a TCP
// accept loop hands the connection to its own goroutine.
func (w *Writer) TrySubmit(msgs []inlet.Message) (bool, error) {
	if len(msgs) == 0 {
		return true, nil
	}
	// A full queue is the common answer under load: say so before deriving
	// (the caller then submits the same messages again, with Submit).
	size := 0
	for i := range msgs {
		size += len(msgs[i].Payload)
	}
	if !w.queue.room(len(msgs), size) {
		return false, nil
	}
	derive(msgs)
	return w.queue.tryPut(msgs, size)
}

func (w *Writer) run() {
	defer close(w.done)
	var batch []inlet.Message
	var lastCommit time.Time
	for {
		if n, closed := w.queue.state(); n == 0 {
			if closed {
				return
			}
			w.queue.wait()
			continue
		}
		// Gather: commit when full, when the interval has passed, or when dry.
		// Under sustained load (the previous commit ended moments ago) a dry
		// queue is waited on until the interval: a connect-per-message fleet
		// then fills one batch per interval instead of one per fsync.
		// A batch of plain messages only gathers for up to PlainInterval: no
		// device waits on its commit, and fewer, larger commits write less.
		start := time.Now()
		deadline := start.Add(w.cfg.Interval)
		plainDeadline := start.Add(max(w.cfg.PlainInterval, w.cfg.Interval))
		busy := start.Sub(lastCommit) < w.cfg.Interval
		batch = batch[:0]
		acked := false
		for {
			var dry bool
			n := len(batch)
			batch, dry = w.queue.pop(batch, w.cfg.MaxBatch-len(batch))
			for i := n; i < len(batch) && !acked; i++ {
				acked = batch[i].Seq != 0 || batch[i].Ack != nil
			}
			now := time.Now()
			if len(batch) >= w.cfg.MaxBatch || !now.Before(plainDeadline) || (acked && !now.Before(deadline)) {
				break
			}
			if !dry {
				continue
			}
			if acked && !busy {
				break
			}
			wait := plainDeadline
			if acked {
				wait = deadline
			}
			if !w.queue.waitMore(wait) {
				break
			}
		}
		w.inflight.Store(int64(len(batch)))
		err := w.commit(batch)
		w.inflight.Store(0)
		lastCommit = time.Now()
		if err != nil {
			w.cfg.Logger.Error("commit: giving up on batch at shutdown", "batch", len(batch), "err", err)
			return
		}
		clear(batch) // drop payload references for the collector
		w.evictBoots(lastCommit)
		w.maintain()
	}
}

// commit accounts for msgs in the device state and persists both, retrying
// until the store accepts them or Close gives up; then it publishes the batch
// and acknowledges its messages.
func (w *Writer) commit(msgs []inlet.Message) error {
	var b *inlet.Batch
	var acks []ack
	var took time.Duration
	var err error
	if w.shared != nil {
		if b, acks, took, err = w.commitShared(w.shared, msgs); err != nil {
			return err
		}
	} else {
		if err := w.loadBoots(msgs); err != nil {
			return err
		}
		b, acks = w.account(msgs)
		if took, err = w.persist(b); err != nil {
			return err
		}
	}
	if w.cfg.OnCommit != nil {
		// Before the counters and the ACKs: whoever sees those can already
		// see the live figures of this batch.
		w.cfg.OnCommit(b)
	}
	w.cfg.Stats.StoreHealthy.Store(true)
	w.cfg.Stats.Committed.Add(int64(len(b.Messages)))
	w.cfg.Stats.Batches.Add(1)
	w.cfg.Stats.ObserveCommit(len(b.Messages), took)
	if len(b.Boots) > 0 {
		w.durMu.Lock()
		for i := range b.Boots {
			bt := &b.Boots[i]
			w.durable[bootKey{Device: bt.Device, Boot: bt.Boot}] = bt.Durable()
		}
		w.durMu.Unlock()
	}
	if len(acks) > 0 {
		now := time.Now().UnixNano()
		for _, a := range acks {
			a.to.Acked(a.seq)
			w.cfg.Stats.AckSeconds.Observe(inlet.LatencyBuckets, float64(now-a.at)/1e9)
		}
	}
	return nil
}

// account is the accounting half of a commit: it updates the device and
// sequence state with msgs (all of whose sequences are in memory, see
// loadBoots) and returns the batch to persist, without the duplicates, and the
// acknowledgements owed once it has committed.
func (w *Writer) account(msgs []inlet.Message) (*inlet.Batch, []ack) {
	acks := acksOf(msgs)
	b, dups := w.ledger().Account(msgs)
	w.cfg.Stats.Duplicates.Add(int64(dups))
	return b, acks
}

// ledger is the writer's accounting state, as inlet.Ledger.Account takes it.
func (w *Writer) ledger() *inlet.Ledger {
	return &inlet.Ledger{Devices: w.devices, Boots: w.boots}
}

// acksOf lists the acknowledgements msgs are owed once committed, duplicates
// included, in stream order.
func acksOf(msgs []inlet.Message) []ack {
	var acks []ack
	for i := range msgs {
		if m := &msgs[i]; m.Ack != nil {
			acks = append(acks, ack{m.Ack, m.Seq, m.ReceivedAt})
		}
	}
	return acks
}

// commitShared is commit's accounting and persisting halves for a store that
// several writers share (inlet.AccountingStore): the store counts msgs against
// the state it holds inside the batch's transaction, so a device whose
// messages other nodes took in the meantime is counted exactly.
func (w *Writer) commitShared(s inlet.AccountingStore, msgs []inlet.Message) (*inlet.Batch, []ack, time.Duration, error) {
	acks := acksOf(msgs)
	var b *inlet.Batch
	var took time.Duration
	err := w.retry("write batch", len(msgs), func() error {
		start := time.Now()
		var dups int
		var err error
		b, dups, err = s.CommitAccounted(w.ctx, w.ledger(), msgs)
		took = time.Since(start)
		if err == nil {
			w.cfg.Stats.Duplicates.Add(int64(dups))
		}
		return err
	})
	return b, acks, took, err
}

// persist is the persisting half: it writes b in one transaction, retrying
// until the store takes it or Close gives up, and reports how long the
// successful attempt took.
func (w *Writer) persist(b *inlet.Batch) (took time.Duration, err error) {
	err = w.retry("write batch", len(b.Messages), func() error {
		start := time.Now()
		err := w.store.Commit(w.ctx, b)
		took = time.Since(start)
		return err
	})
	return took, err
}

// retry runs op until it succeeds or Close gives up (w.ctx ends), backing off
// from 10 ms to 5 s. While it fails the store is reported unhealthy, each
// failure is counted, and the error is logged at most once per 10 s; a recovery
// is logged once. what names the operation; batch is the number of messages
// waiting on it.
func (w *Writer) retry(what string, batch int, op func() error) error {
	backoff := 10 * time.Millisecond
	var lastLog time.Time
	failed := 0
	for {
		err := op()
		if err == nil {
			break
		}
		failed++
		w.cfg.Stats.StoreErrors.Add(1)
		w.cfg.Stats.StoreHealthy.Store(false)
		if time.Since(lastLog) >= 10*time.Second {
			w.cfg.Logger.Error("commit: "+what+" failed; retrying", "batch", batch, "attempt", failed, "err", err)
			lastLog = time.Now()
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-w.ctx.Done():
			t.Stop()
			return fmt.Errorf("commit: %d messages not stored: %s: %w", batch, what, err)
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	if failed > 0 {
		w.cfg.Logger.Info("commit: "+what+" recovered", "batch", batch, "attempts", failed+1)
	}
	return nil
}

// loadBoots reads back from the store the sequences msgs continue that are no
// longer in memory, before any accounting, so that a failed read can be retried
// without having counted anything twice.
func (w *Writer) loadBoots(msgs []inlet.Message) error {
	var absent map[bootKey]bool
	for i := range msgs {
		m := &msgs[i]
		if m.Seq == 0 {
			continue
		}
		k := bootKey{Device: m.Device, Boot: m.Boot}
		if w.boots[k] != nil || absent[k] {
			continue
		}
		err := w.retry("read sequence state", len(msgs), func() error {
			b, ok, err := w.store.Boot(w.ctx, k.Device, k.Boot)
			switch {
			case err != nil:
				return err
			case ok:
				w.boots[k] = &b
			default:
				if absent == nil {
					absent = make(map[bootKey]bool)
				}
				absent[k] = true // a new sequence
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// maintainer is a store with work to do between commits (sqlite merges its
// recent rows into the indexed tables).
type maintainer interface {
	Maintain(ctx context.Context) (bool, error)
}

// maintain gives the store its turn between commits, after the ACKs of the
// last one; a failure is logged and retried after the next commit.
func (w *Writer) maintain() {
	m, ok := w.store.(maintainer)
	if !ok {
		return
	}
	if _, closed := w.queue.state(); closed {
		return // shutting down: commit what is queued, merge next time
	}
	start := time.Now()
	did, err := m.Maintain(w.ctx)
	switch {
	case err != nil:
		w.cfg.Stats.StoreErrors.Add(1)
		w.cfg.Logger.Warn("commit: store maintenance failed", "err", err)
	case did:
		w.cfg.Logger.Debug("commit: store maintenance", "took", time.Since(start))
	}
}

// evictBoots drops from memory the sequences not seen for BootIdle, except
// each device's latest: their state is in the store, read back if they return.
func (w *Writer) evictBoots(now time.Time) {
	if now.Sub(w.evicted) < min(time.Minute, w.cfg.BootIdle) {
		return
	}
	w.evicted = now
	cutoff := now.Add(-w.cfg.BootIdle).UnixNano()
	var gone []bootKey
	for k, b := range w.boots {
		if b.LastSeen < cutoff && (w.devices[k.Device] == nil || w.devices[k.Device].LastBoot != k.Boot) {
			gone = append(gone, k)
		}
	}
	if len(gone) == 0 {
		return
	}
	w.durMu.Lock()
	for _, k := range gone {
		delete(w.boots, k)
		delete(w.durable, k)
	}
	w.durMu.Unlock()
}

// KnownDurable is Durable when the answer is in memory; ok is false when it
// needs the store. It never waits on the store or the writer. With a store
// that several writers share, the answer always needs the store: another node
// may have advanced the sequence.
func (w *Writer) KnownDurable(device, boot string) (seq int64, ok bool) {
	if w.shared != nil {
		return 0, false
	}
	w.durMu.RLock()
	seq, ok = w.durable[bootKey{Device: device, Boot: boot}]
	w.durMu.RUnlock()
	return seq, ok
}

// Durable returns the seq a device's hello is answered with (OK last=): the
// committed state of (device, boot), 0 if it has stored nothing. It may read
// the store.
func (w *Writer) Durable(device, boot string) int64 {
	if d, ok := w.KnownDurable(device, boot); ok {
		return d
	}
	// Not in memory: a sequence idle long enough to be evicted, or none.
	b, found, err := w.store.Boot(w.ctx, device, boot)
	if err != nil || !found {
		return 0 // the device resends what it has; duplicates are not stored twice
	}
	return b.Durable()
}

// Close stops taking messages, commits everything queued and waits for the writer.
// If ctx ends first, Close stops retrying a failing store and returns an error
// naming what was not stored.
func (w *Writer) Close(ctx context.Context) error {
	w.queue.close() // blocked submitters get ErrClosed
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		n := w.inflight.Load()
		w.abort()
		<-w.done
		q, _ := w.queue.state()
		n += int64(q)
		return fmt.Errorf("commit: close: %d messages not stored: %w", n, ctx.Err())
	}
}
