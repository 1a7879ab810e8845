package commit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/commit"
)

func acked(device, boot string, seqs ...int64) []inlet.Message {
	var out []inlet.Message
	for _, s := range seqs {
		out = append(out, inlet.Message{Device: device, Boot: boot, Seq: s, Transport: inlet.TCP, Payload: []byte(fmt.Sprint(s))})
	}
	return out
}

// submitAndWait queues msgs and waits until the store holds n rows.
func submitAndWait(t *testing.T, w *commit.Writer, st *memStore, n int, msgs []inlet.Message) {
	t.Helper()
	if err := w.Submit(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for st.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("store has %d rows, want %d", st.count(), n)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // let the writer finish its round (eviction)
}

// A sequence other than its device's latest leaves memory once idle, and is read
// back from the store when it is used again: de-duplication, gap filling and the
// hello's answer stay exactly as if it had stayed.
func TestWriterEvictsIdleBootsAndReadsThemBack(t *testing.T) {
	st := &memStore{}
	w, err := commit.New(context.Background(), st, commit.Config{BootIdle: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())

	submitAndWait(t, w, st, 3, acked("d", "A", 1, 2, 4)) // 3 missing
	if got := w.Durable("d", "A"); got != 2 {
		t.Fatalf("durable A = %d, want 2", got)
	}
	submitAndWait(t, w, st, 4, acked("d", "B", 1)) // a reboot: A is no longer the latest
	lookups := st.lookupCount()
	if got := w.Durable("d", "A"); got != 2 {
		t.Fatalf("durable A after eviction = %d, want 2", got)
	}
	if st.lookupCount() == lookups {
		t.Fatalf("Durable(A) did not read the store: A was not evicted")
	}

	// The outbox resends A's 3 (a fill) and 2 (a duplicate) after the reboot.
	submitAndWait(t, w, st, 5, acked("d", "A", 3, 2))
	var seqs []int64
	for _, m := range st.rowsCopy() {
		if m.Boot == "A" {
			seqs = append(seqs, m.Seq)
		}
	}
	if fmt.Sprint(seqs) != "[1 2 4 3]" {
		t.Errorf("stored A seqs %v, want [1 2 4 3] (2 not twice)", seqs)
	}
	d := st.device("d")
	if d.Resets != 1 || d.Missing != 0 || d.Duplicates != 1 || d.LastBoot != "B" {
		t.Errorf("device %+v: want 1 reset (B), nothing missing, 1 duplicate, latest boot B", d)
	}
	if got := w.Durable("d", "A"); got != 4 {
		t.Errorf("durable A after the fill = %d, want 4", got)
	}
}
