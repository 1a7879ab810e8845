package live

import (
	"testing"
	"time"

	"github.com/inletdev/inlet"
)

func batch(msgs ...inlet.Message) *inlet.Batch { return &inlet.Batch{Messages: msgs} }

func msg(dev, payload string, at int64) inlet.Message {
	return inlet.Message{Device: dev, Payload: []byte(payload), Fields: []byte(`{"value":1}`), ReceivedAt: at}
}

func TestDevicesAndRates(t *testing.T) {
	h, err := New(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	h.now = func() time.Time { return now }

	// Unsorted batch: the last message of each device in batch order wins.
	h.OnCommit(batch(msg("a", "1", 1), msg("b", "10", 2), msg("a", "2", 3), msg("a", "3", 4)))
	payload := []byte("x")
	m := msg("b", "", 5)
	m.Payload = payload
	h.OnCommit(batch(m))
	payload[0] = 'y' // the hub must have copied it

	d := h.Devices()
	if got := string(d["a"].LastPayload); got != "3" || d["a"].LastAt != 4 {
		t.Errorf("a: last payload %q at %d, want \"3\" at 4", got, d["a"].LastAt)
	}
	if got := string(d["b"].LastPayload); got != "x" {
		t.Errorf("b: last payload %q, want \"x\" (copied)", got)
	}
	if d["a"].RatePerMinute != 3 || d["b"].RatePerMinute != 2 {
		t.Errorf("rates a=%d b=%d, want 3 and 2", d["a"].RatePerMinute, d["b"].RatePerMinute)
	}

	// One second later: the global history shows the 5 messages in its last slot.
	now = now.Add(time.Second)
	rate, hist := h.Rate()
	if len(hist) != 60 || hist[59] != 5 || rate != 0.5 {
		t.Errorf("rate %v, history tail %v: want 0.5 and 5 in the last second", rate, hist[55:])
	}
	// Two minutes later everything has aged out.
	now = now.Add(2 * time.Minute)
	if d := h.Devices(); d["a"].RatePerMinute != 0 {
		t.Errorf("rate after 2 min = %d, want 0", d["a"].RatePerMinute)
	}
	if rate, _ := h.Rate(); rate != 0 {
		t.Errorf("global rate after 2 min = %v", rate)
	}
}

// Changed is closed after a commit, and a channel taken after the signal waits
// for the next one.
func TestChangedSignal(t *testing.T) {
	h, _ := New(t.Context(), nil)
	go h.Run(t.Context())
	c1 := h.Changed()
	select {
	case <-c1:
		t.Fatal("closed before any commit")
	case <-time.After(20 * time.Millisecond):
	}
	h.OnCommit(batch(msg("a", "1", 1)))
	select {
	case <-c1:
	case <-time.After(2 * time.Second):
		t.Fatal("not signalled after a commit")
	}
	c2 := h.Changed()
	select {
	case <-c2:
		t.Fatal("new channel already closed without a new commit")
	case <-time.After(2 * Coalesce):
	}
	h.OnCommit(batch(msg("a", "2", 2)))
	select {
	case <-c2:
	case <-time.After(2 * time.Second):
		t.Fatal("second commit not signalled")
	}
}

// Recent counts the messages of the current and the previous 100 ms step, and
// forgets older ones.
func TestRecent(t *testing.T) {
	h, _ := New(t.Context(), nil)
	now := time.Unix(1_800_000_000, 0)
	h.now = func() time.Time { return now }
	if n := h.Recent(); n != 0 {
		t.Errorf("recent before any commit: %d", n)
	}
	h.OnCommit(batch(msg("a", "1", 1), msg("a", "2", 2)))
	h.OnCommit(batch(msg("b", "1", 3)))
	if n := h.Recent(); n != 3 {
		t.Errorf("recent right after 3 messages: %d, want 3", n)
	}
	now = now.Add(recentStep)
	h.OnCommit(batch(msg("a", "3", 4)))
	if n := h.Recent(); n != 3 {
		t.Errorf("recent one step later, 3 then 1: %d, want the busier step's 3", n)
	}
	now = now.Add(recentStep)
	if n := h.Recent(); n != 1 {
		t.Errorf("recent two steps later: %d, want the previous step's 1", n)
	}
	now = now.Add(2 * recentStep)
	if n := h.Recent(); n != 0 {
		t.Errorf("recent after a quiet 200 ms: %d, want 0", n)
	}
}
