// Package live owns what inlet knows about the present moment and the store does
// not keep: a signal that new messages have committed (for the event streams'
// feed to read them back), each device's newest payload, and message rates over
// the last minute and the last moment. It is fed by the commit writer's OnCommit
// hook, after each transaction is durable, so nothing it reports was published
// before it was stored. It never blocks the writer: the hook takes one short
// lock and a non-blocking send.
package live

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/inletdev/inlet"
)

// Coalesce is the shortest time between two change signals: a busy server
// commits hundreds of times a second, and readers re-reading the store for each
// commit would cost more than the commits.
const Coalesce = 50 * time.Millisecond

const (
	deviceBuckets = 12 // per-device rate: 12 buckets of 5 s
	deviceBucketS = 5
	globalBuckets = 61 // global rate: 61 buckets of 1 s (60 complete, 1 filling)
)

// Hub collects the live figures and broadcasts commits.
type Hub struct {
	now  func() time.Time
	wake chan struct{}

	mu      sync.Mutex
	changed chan struct{} // closed at the next signal, then replaced
	recent  [2]slot       // messages committed per 100 ms: this step and the one before
	devices map[string]*device
	global  [globalBuckets]slot
	started time.Time
}

type slot struct {
	epoch int64 // which second (or 5-second step) the count belongs to
	n     int64
}

type device struct {
	payload []byte // never modified once set: readers may keep them
	fields  []byte
	at      int64
	rate    [deviceBuckets]slot
}

// New returns a hub primed with the newest stored message of every device.
func New(ctx context.Context, r inlet.Reader) (*Hub, error) {
	h := &Hub{
		now:     time.Now,
		wake:    make(chan struct{}, 1),
		changed: make(chan struct{}),
		devices: make(map[string]*device),
	}
	h.started = h.now()
	if r != nil {
		latest, err := r.Latest(ctx)
		if err != nil {
			return nil, fmt.Errorf("live: load latest messages: %w", err)
		}
		for i := range latest {
			m := &latest[i]
			h.devices[m.Device] = &device{payload: m.Payload, fields: m.Fields, at: m.ReceivedAt}
		}
	}
	return h, nil
}

// OnCommit records a committed batch; it is the commit writer's hook.
func (h *Hub) OnCommit(b *inlet.Batch) {
	t := h.now()
	now := t.Unix()
	h.mu.Lock()
	g := &h.global[now%globalBuckets]
	if g.epoch != now {
		*g = slot{epoch: now}
	}
	g.n += int64(len(b.Messages))
	step := t.UnixNano() / int64(recentStep)
	if r := &h.recent[step%2]; r.epoch != step {
		*r = slot{epoch: step}
	}
	h.recent[step%2].n += int64(len(b.Messages))
	msgs := b.Messages
	for i := 0; i < len(msgs); {
		j := i + 1
		for j < len(msgs) && msgs[j].Device == msgs[i].Device {
			j++
		}
		last := &msgs[j-1] // within a device, messages keep their arrival order
		d := h.devices[last.Device]
		if d == nil {
			d = &device{}
			h.devices[last.Device] = d
		}
		d.payload = clone(last.Payload) // fresh: Devices hands out the old ones
		d.fields = clone(last.Fields)
		d.at = last.ReceivedAt
		e := now / deviceBucketS
		s := &d.rate[e%deviceBuckets]
		if s.epoch != e {
			*s = slot{epoch: e}
		}
		s.n += int64(j - i)
		i = j
	}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Run broadcasts change signals, at most one per Coalesce, until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-h.wake:
		case <-ctx.Done():
			return
		}
		h.mu.Lock()
		close(h.changed)
		h.changed = make(chan struct{})
		h.mu.Unlock()
		t.Reset(Coalesce)
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// Changed returns a channel that is closed after the next commit. Take it before
// reading the store, then wait on it: nothing committed in between is missed.
func (h *Hub) Changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// recentStep is the step of Recent.
const recentStep = 100 * time.Millisecond

// Recent returns the messages committed in the current 100 ms step or the one
// before, whichever holds more: the ingestion rate of the last moment, which
// tells a burst (or a writer working through a backlog) from steady traffic.
func (h *Hub) Recent() int64 {
	step := h.now().UnixNano() / int64(recentStep)
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for _, r := range h.recent {
		if r.epoch == step || r.epoch == step-1 {
			n = max(n, r.n)
		}
	}
	return n
}

// Device is a device's live figures.
type Device struct {
	LastPayload   []byte
	LastFields    []byte
	LastAt        int64 // unix nanoseconds of the newest message
	RatePerMinute int64 // messages committed in the last minute (5-second steps)
}

// Devices returns every device's live figures. The slices are shared and must
// not be modified. It holds the lock the commit writer needs only to copy
// references: no allocation per payload.
func (h *Hub) Devices() map[string]Device {
	e := h.now().Unix() / deviceBucketS
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]Device, len(h.devices))
	for id, d := range h.devices {
		var n int64
		for _, s := range d.rate {
			if s.epoch > e-deviceBuckets && s.epoch <= e {
				n += s.n
			}
		}
		out[id] = Device{LastPayload: d.payload, LastFields: d.fields, LastAt: d.at, RatePerMinute: n}
	}
	return out
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// DeviceCount returns how many devices the hub knows.
func (h *Hub) DeviceCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.devices)
}

// Rate returns the messages committed in each of the last 60 complete seconds,
// oldest first, and the mean rate over the last 10 of them.
func (h *Hub) Rate() (perSecond float64, history []int64) {
	now := h.now().Unix()
	history = make([]int64, globalBuckets-1)
	h.mu.Lock()
	for i := range history {
		sec := now - int64(len(history)-i) // now-60 … now-1
		if s := h.global[sec%globalBuckets]; s.epoch == sec {
			history[i] = s.n
		}
	}
	h.mu.Unlock()
	var sum int64
	for _, n := range history[len(history)-10:] {
		sum += n
	}
	return float64(sum) / 10, history
}

// Started returns when the hub started counting.
func (h *Hub) Started() time.Time { return h.started }
