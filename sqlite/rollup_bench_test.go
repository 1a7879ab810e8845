package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

// BenchmarkCommitRollups is the stream scenario's commit with the rollups kept
// and without them: batches of 1000 readings (`t=…,h=…`, two fields) from 100
// devices, 10 ms apart in receive time, so a minute closes every 6 batches and
// its 100 devices × 3 rows are written then. Run the two alternately
// (-count) on one machine: their ratio is the rollups' cost.
func BenchmarkCommitRollups(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("rollups=%v", on), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "inlet.db")
			s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			sqlite.SetRollups(s, on)
			ctx := context.Background()
			remote := netip.MustParseAddrPort("127.0.0.1:40000")
			at := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).UnixNano()
			const n, devices = 1000, 100
			bt := &inlet.Batch{Messages: make([]inlet.Message, n)}
			b.ReportAllocs()
			cpu0, w0 := benchCPU(), writeBytes()
			for i := 0; b.Loop(); i++ {
				for j := range bt.Messages {
					at += 10e6
					k := i*n + j
					p := fmt.Appendf(nil, "t=%.1f,h=%d", 20+float64(k%50)/10, k%100)
					bt.Messages[j] = inlet.Message{ReceivedAt: at, Device: fmt.Sprintf("dev-%03d", k%devices), Transport: inlet.UDP,
						Remote: remote, Payload: p, Fields: fmt.Appendf(nil, `{"t":%.1f,"h":%d}`, 20+float64(k%50)/10, k%100)}
				}
				if err := s.Commit(ctx, bt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64((benchCPU()-cpu0).Microseconds())/float64(n*b.N), "cpu-µs/row")
			if w0 >= 0 {
				b.ReportMetric(float64(writeBytes()-w0)/float64(n*b.N), "written-B/row")
			}
		})
	}
}

// writeBytes is the process's write_bytes (/proc/self/io: bytes sent to the
// storage layer), -1 where there is none.
func writeBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("write_bytes: ")); ok {
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
