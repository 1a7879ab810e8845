package wire_test

import (
	"bytes"
	"testing"

	"github.com/inletdev/inlet/wire"
)

// BenchmarkFramer frames a stream of tutorial counter lines read in 16 KB chunks,
// as a TCP reader would; lines straddle the chunk boundaries.
func BenchmarkFramer(b *testing.B) {
	const line = "12345\r\n"
	stream := bytes.Repeat([]byte(line), (1<<20)/len(line))
	msgs := 0
	emit := func([]byte) { msgs++ }
	f := wire.Framer{Max: wire.DefaultMaxMessage}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		feedChunks(&f, stream, 16<<10, emit)
	}
	if want := b.N * (len(stream) / len(line)); msgs != want {
		b.Fatalf("%d messages, want %d", msgs, want)
	}
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkSplitDatagram frames the tutorial's padded 10-byte datagram and a
// datagram of several lines.
func BenchmarkSplitDatagram(b *testing.B) {
	for _, c := range []struct {
		name string
		p    []byte
	}{
		{"tutorial", []byte("5\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
		{"lines", bytes.Repeat([]byte("temp=21.5\r\n"), 100)},
	} {
		b.Run(c.name, func(b *testing.B) {
			msgs := 0
			emit := func([]byte) { msgs++ }
			b.SetBytes(int64(len(c.p)))
			b.ReportAllocs()
			for b.Loop() {
				wire.SplitDatagram(c.p, wire.DefaultMaxMessage, emit)
			}
			b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
