package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet"
)

// BenchmarkIngestWithStreams measures ingestion (messages submitted to the
// commit writer until durably committed, b.N of them, from 4 producers in
// batches of 64 from 32 devices) while 0, 16 or 256 clients read
// /api/stream as fast as they can. docs/http.md promises that stream
// subscribers never slow ingestion. MB/reader is what each reader had been
// sent when ingestion ended, s-delivered when the last reader had every
// message. BENCHMARKS.md has the figures:
//
//	go test ./httpapi -run '^$' -bench IngestWithStreams -benchtime 100000x -count 5
func BenchmarkIngestWithStreams(b *testing.B) {
	for _, subs := range []int{0, 16, 256} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			benchIngest(b, subs)
		})
	}
}

func benchIngest(b *testing.B, subs int) {
	e := newEnv(b, withQuietLog())
	// Readers: raw connections that read everything they are sent, count the
	// events and discard them.
	total := int64(b.N)
	var received atomic.Int64
	var wg, delivered sync.WaitGroup
	for range subs {
		c := rawGET(b, e.srv.Listener.Addr().String(), "/api/stream")
		wg.Add(1)
		delivered.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			var events int64
			var tail []byte // the end of the previous read, for a marker cut in two
			for {
				n, err := c.Read(buf)
				received.Add(int64(n))
				tail = append(tail, buf[:n]...)
				events += int64(bytes.Count(tail, []byte("\ndata: ")))
				if i := bytes.LastIndex(tail, []byte("\ndata: ")); i >= 0 {
					tail = tail[i+1:]
				}
				if len(tail) > 8 {
					tail = append(tail[:0], tail[len(tail)-8:]...)
				}
				if events == total {
					delivered.Done()
					events++
				}
				if err != nil {
					if events < total {
						delivered.Done()
					}
					return
				}
			}
		}()
	}
	waitFor(b, "subscribers", 30*time.Second, func() bool { return e.stats.StreamSubscribers.Load() == int64(subs) })

	const producers, batch, devices = 4, 64, 32
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var pwg sync.WaitGroup
	for p := range producers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for {
				first := next.Add(batch) - batch
				if first >= total {
					return
				}
				n := min(batch, total-first)
				msgs := make([]inlet.Message, n)
				for i := range msgs {
					k := first + int64(i)
					msgs[i] = msg(fmt.Sprintf("10.0.%d.%d", p, k%devices), fmt.Sprintf("n=%d;temp=21.5;hum=40", k))
				}
				if err := e.writer.Submit(context.Background(), msgs); err != nil {
					b.Error(err)
					return
				}
				e.stats.MessagesTCP.Add(n) // as a listener counts what it queued
			}
		}()
	}
	pwg.Wait()
	for e.stats.Committed.Load() < total {
		time.Sleep(100 * time.Microsecond)
	}
	took := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(total)/took.Seconds(), "msgs/s")
	if subs > 0 {
		// What the readers had when ingestion ended, and when the last of
		// them had every message.
		b.ReportMetric(float64(received.Load())/1e6/float64(subs), "MB/reader")
		all := make(chan struct{})
		go func() { delivered.Wait(); close(all) }()
		select {
		case <-all:
			b.ReportMetric(time.Since(start).Seconds(), "s-delivered")
		case <-time.After(60 * time.Second):
			b.Logf("%d subscribers: not every reader had every message 60 s after ingestion ended", subs)
		}
	}
	if d := e.stats.StreamDropped.Load(); d != 0 {
		b.Errorf("%d subscribers dropped during the benchmark", d)
	}
	e.close()
	wg.Wait()
}
