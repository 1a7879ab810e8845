package commit_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/commit"
)

// discardStore is an inlet.Store that keeps nothing: what the benchmark
// measures is the writer itself (queue, batching, derived fields, per-device
// accounting, acks), without the database.
type discardStore struct{}

func (discardStore) Commit(context.Context, *inlet.Batch) error      { return nil }
func (discardStore) Devices(context.Context) ([]inlet.Device, error) { return nil, nil }
func (discardStore) Boot(context.Context, string, string) (inlet.Boot, bool, error) {
	return inlet.Boot{}, false, nil
}
func (discardStore) Close() error { return nil }

// countAcker counts acknowledgements, and one more on a shared counter.
type countAcker struct {
	n     atomic.Int64
	total *atomic.Int64
	then  func(total int64)
}

func (a *countAcker) Acked(int64) {
	a.n.Add(1)
	a.then(a.total.Add(1))
}

// BenchmarkWriter submits slices of 256 messages, as a TCP reader does for one
// read, from 8 devices (plain counters, or acknowledged with a seq each) and
// waits until the writer has committed them all (and acknowledged them: the
// writer acks after it has told OnCommit).
func BenchmarkWriter(b *testing.B) {
	for _, acked := range []bool{false, true} {
		name := "plain"
		if acked {
			name = "acked"
		}
		b.Run(name, func(b *testing.B) {
			const devices, slice = 8, 256
			var committed, acks atomic.Int64
			done := make(chan struct{}, 1)
			var want atomic.Int64
			// finished signals the end of a round: every message committed, or
			// in acknowledged mode acknowledged.
			progress := &committed
			if acked {
				progress = &acks
			}
			finished := func(n int64) {
				if n >= want.Load() {
					select {
					case done <- struct{}{}:
					default:
					}
				}
			}
			w, err := commit.New(context.Background(), discardStore{}, commit.Config{
				Interval: time.Millisecond,
				OnCommit: func(bt *inlet.Batch) {
					n := committed.Add(int64(len(bt.Messages)))
					if !acked {
						finished(n)
					}
				},
			})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close(context.Background())
			ackers := make([]*countAcker, devices)
			for d := range ackers {
				ackers[d] = &countAcker{total: &acks, then: finished}
			}
			remote := netip.MustParseAddrPort("127.0.0.1:40000")
			seq := make([]int64, devices)
			var bytes int64
			mk := func(d int) []inlet.Message {
				msgs := make([]inlet.Message, slice)
				for i := range msgs {
					seq[d]++
					p := []byte(fmt.Sprint(seq[d]))
					bytes += int64(len(p))
					msgs[i] = inlet.Message{Device: fmt.Sprintf("127.0.0.%d", d+1), Transport: inlet.TCP, Remote: remote, Payload: p}
					if acked {
						msgs[i].Device, msgs[i].Boot, msgs[i].Seq, msgs[i].Ack = fmt.Sprintf("bench-%d", d), "5f3a9c01", seq[d], ackers[d]
					}
				}
				return msgs
			}
			// Built ahead: the benchmark measures the writer, not making messages.
			const rounds = 64
			batches := make([][]inlet.Message, 0, rounds*devices)
			for range rounds {
				for d := range devices {
					batches = append(batches, mk(d))
				}
			}
			perRound := int64(rounds * devices * slice)
			b.SetBytes(bytes)
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				// Submit takes the slices over: hand it fresh copies each round, with
				// new seqs so acknowledged messages are not duplicates.
				round := make([][]inlet.Message, len(batches))
				for i, m := range batches {
					round[i] = append([]inlet.Message(nil), m...)
					for j := range m {
						if acked {
							m[j].Seq += rounds * slice
						}
					}
				}
				want.Add(perRound)
				b.StartTimer()
				for _, m := range round {
					if err := w.Submit(ctx, m); err != nil {
						b.Fatal(err)
					}
				}
				for progress.Load() < want.Load() {
					select {
					case <-done:
					case <-time.After(time.Minute):
						b.Fatalf("committed %d, acknowledged %d, want %d", committed.Load(), acks.Load(), want.Load())
					}
				}
			}
			b.ReportMetric(float64(committed.Load())/b.Elapsed().Seconds(), "msgs/s")
			if acked {
				var n int64
				for _, a := range ackers {
					n += a.n.Load()
				}
				if n != committed.Load() {
					b.Errorf("%d acks for %d messages", n, committed.Load())
				}
			}
		})
	}
}
