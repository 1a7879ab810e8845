package sqlite_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/commit"
	"github.com/inletdev/inlet/sqlite"
)

// timedStore is the store as the commit writer sees it, recording how long
// each Commit took (what inlet_commit_duration_seconds observes, unbucketed).
type timedStore struct {
	*sqlite.Store
	mu    sync.Mutex
	times []time.Duration
}

func (s *timedStore) Commit(ctx context.Context, b *inlet.Batch) error {
	start := time.Now()
	err := s.Store.Commit(ctx, b)
	d := time.Since(start)
	s.mu.Lock()
	s.times = append(s.times, d)
	s.mu.Unlock()
	return err
}

// take returns the commit times since the last take.
func (s *timedStore) take() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.times
	s.times = nil
	return t
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

type ackChan chan struct{}

func (c ackChan) Acked(int64) { c <- struct{}{} }

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkCommitDuringPrune measures the p99 time of the commit writer's
// transactions under a steady load of acknowledged clients (each sends a
// reading, waits for its ACK, sends the next one a period later), in phases
// without and with a Prune of a large backlog of old rows running beside it,
// alternated, three of each: the bound is p99 with a prune within 20%
// of p99 without. Run it with -benchtime 1x (it times its own phases);
// BENCH_BACKLOG (rows, default 1,500,000), BENCH_CLIENTS (default 100),
// BENCH_PERIOD_MS (default 50), BENCH_PHASE_S (default 5) and BENCH_BATCH
// (PruneOptions.BatchRows) tune it.
func BenchmarkCommitDuringPrune(b *testing.B) {
	backlog := envInt("BENCH_BACKLOG", 1_500_000)
	clients := envInt("BENCH_CLIENTS", 100)
	period := time.Duration(envInt("BENCH_PERIOD_MS", 50)) * time.Millisecond
	phase := time.Duration(envInt("BENCH_PHASE_S", 5)) * time.Second
	batchRows := envInt("BENCH_BATCH", sqlite.DefaultPruneBatch)
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "inlet.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	remote := netip.MustParseAddrPort("192.0.2.1:4000")
	payload := []byte(fmt.Sprintf("t=%.1f h=%d note=%070d", 21.5, 40, 0)) // about 100 bytes, as in TestRetentionLevelsOff
	start := time.Now()
	for i := 0; i < backlog; i += 8192 {
		bt := &inlet.Batch{}
		for j := i; j < min(i+8192, backlog); j++ {
			bt.Messages = append(bt.Messages, inlet.Message{ReceivedAt: int64(j) * 1e6, Device: fmt.Sprintf("old-%d", j%50),
				Transport: inlet.TCP, Remote: remote, Payload: payload, Fields: []byte(`{"t":21.5,"h":40}`)})
		}
		if err := st.Commit(ctx, bt); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("backlog: %d old rows written in %s", backlog, time.Since(start).Round(time.Millisecond))

	ts := &timedStore{Store: st}
	w, err := commit.New(ctx, ts, commit.Config{})
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ack := make(ackChan, 1)
			tick := time.NewTicker(period)
			defer tick.Stop()
			time.Sleep(time.Duration(c) * period / time.Duration(clients)) // spread over the period
			for seq := int64(1); ; seq++ {
				m := inlet.Message{ReceivedAt: time.Now().UnixNano(), Device: fmt.Sprintf("dev-%d", c), Boot: "b1", Seq: seq,
					Transport: inlet.TCP, Remote: remote, Payload: payload, Fields: []byte(`{"t":21.5,"h":40}`), Ack: ack}
				if err := w.Submit(ctx, []inlet.Message{m}); err != nil {
					return
				}
				select {
				case <-ack:
					sent.Add(1)
				case <-stop:
					return
				}
				select {
				case <-tick.C:
				case <-stop:
					return
				}
			}
		}()
	}
	time.Sleep(phase / 2) // warm up
	ts.take()
	var p99s [2][]float64
	deleted := int64(0)
	for round := range 3 {
		for _, pruning := range []bool{false, true} {
			pctx, cancel := context.WithCancel(ctx)
			done := make(chan int64, 1)
			if pruning {
				go func() {
					n, _ := st.Prune(pctx, 1e15, sqlite.PruneOptions{BatchRows: int64(batchRows)})
					done <- n
				}()
			}
			ts.take()
			time.Sleep(phase)
			times := ts.take()
			cancel()
			if pruning {
				n := <-done
				deleted += n
				if int(deleted) >= backlog {
					b.Fatalf("the backlog ran out during round %d: raise BENCH_BACKLOG", round+1)
				}
			}
			k := 0
			if pruning {
				k = 1
			}
			p99s[k] = append(p99s[k], float64(quantile(times, 0.99).Microseconds())/1000)
			b.Logf("round %d, prune %-5v: %5d commits, p50 %6.2f ms, p99 %6.2f ms, max %6.2f ms (deleted so far %d)", round+1, pruning,
				len(times), float64(quantile(times, 0.5).Microseconds())/1000, p99s[k][len(p99s[k])-1],
				float64(quantile(times, 1).Microseconds())/1000, deleted)
		}
	}
	close(stop)
	wg.Wait()
	w.Close(ctx)
	st.Close()
	med := func(v []float64) float64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
	a, p := med(p99s[0]), med(p99s[1])
	b.ReportMetric(a, "p99-ms-without")
	b.ReportMetric(p, "p99-ms-pruning")
	b.ReportMetric(p/a, "ratio")
	b.ReportMetric(float64(deleted)/(3*phase.Seconds()), "pruned-rows/s")
	b.Logf("p99 without a prune %v ms, with %v ms (medians of 3: %.2f, %.2f; ratio %.2f); %d acknowledged readings; %d rows pruned",
		p99s[0], p99s[1], a, p, p/a, sent.Load(), deleted)
}
