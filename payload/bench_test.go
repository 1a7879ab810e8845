package payload_test

import (
	"fmt"
	"testing"

	"github.com/inletdev/inlet/payload"
)

// BenchmarkAppendFieldsBatch derives the fields of a whole batch into one arena,
// as the commit writer does for every slice a listener submits: 8,192 payloads,
// mostly counters, some key=value and JSON readings.
func BenchmarkAppendFieldsBatch(b *testing.B) {
	for _, mix := range []struct {
		name string
		gen  func(i int) string
	}{
		{"counters", func(i int) string { return fmt.Sprint(i) }},
		{"mixed", func(i int) string {
			switch i % 4 {
			case 0:
				return fmt.Sprintf("temp=%d.5,hum=%d,room=lab", i%40, i%100)
			case 1:
				return fmt.Sprintf(`{"t":%d.5,"room":"lab"}`, i%40)
			default:
				return fmt.Sprint(i)
			}
		}},
	} {
		b.Run(mix.name, func(b *testing.B) {
			const n = 8192
			payloads := make([][]byte, n)
			var size int
			for i := range payloads {
				payloads[i] = []byte(mix.gen(i))
				size += len(payloads[i])
			}
			arena := make([]byte, 0, size+16*n)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				arena = arena[:0]
				for _, p := range payloads {
					arena, _, _ = payload.AppendFields(arena, p)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
