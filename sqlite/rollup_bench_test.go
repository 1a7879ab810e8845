package sqlite_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

// BenchmarkCommitRollups is a commit with the rollups kept and without them,
// batches of 1000 messages: "stream" is inlet bench's stream scenario (10
// devices counting, `41`, 10 µs apart in receive time), "sensors" 100 devices
// sending `t=…,h=…` (two fields) once a second each (10 ms apart), so a minute
// closes every 6 batches and 100 devices × 3 rows are written (every ten
// minutes, so 3,000 rows every 60 batches). Run the two alternately on one
// machine: their ratio is the rollups' cost.
func BenchmarkCommitRollups(b *testing.B) {
	for _, c := range []struct {
		name    string
		devices int
		gap     int64
		fields  func(k int) []byte
	}{
		{"stream", 10, 10e3, func(k int) []byte { return fmt.Appendf(nil, `{"value":%d}`, k/10) }},
		{"sensors", 100, 10e6, func(k int) []byte { return fmt.Appendf(nil, `{"t":%.1f,"h":%d}`, 20+float64(k%50)/10, k%100) }},
	} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/rollups=%v", c.name, on), func(b *testing.B) {
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
				const n = 1000
				bt := &inlet.Batch{Messages: make([]inlet.Message, n)}
				b.ReportAllocs()
				cpu0, w0 := benchCPU(), writeBytes(b)
				for i := 0; b.Loop(); i++ {
					for j := range bt.Messages {
						at += c.gap
						k := i*n + j
						bt.Messages[j] = inlet.Message{ReceivedAt: at, Device: fmt.Sprintf("dev-%03d", k%c.devices), Transport: inlet.UDP,
							Remote: remote, Payload: []byte("x"), Fields: c.fields(k)}
					}
					if err := s.Commit(ctx, bt); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64((benchCPU()-cpu0).Microseconds())/float64(n*b.N), "cpu-µs/row")
				if w0 >= 0 {
					b.ReportMetric(float64(writeBytes(b)-w0)/float64(n*b.N), "written-B/row")
				}
			})
		}
	}
}
