package wire_test

import (
	"bytes"
	"fmt"
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

// BenchmarkInlet1 parses what an acknowledged device sends: the hello that opens
// a TCP connection, a message line ("<seq> <payload>", the hot one), and a UDP
// datagram with its header; and encodes the server's cumulative ACK.
func BenchmarkInlet1(b *testing.B) {
	hello := []byte("INLET/1 id=greenhouse-7 boot=5f3a9c01 token=s3cret-token")
	b.Run("hello", func(b *testing.B) {
		b.SetBytes(int64(len(hello)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := wire.ParseHello(hello); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct{ name, line string }{
		{"message/counter", "123456 123456"},
		{"message/kv", "123456 temp=21.5,hum=40,room=lab"},
	} {
		line := []byte(c.line)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := wire.ParseMessage(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	dgram := []byte("INLET/1 id=greenhouse-7 boot=5f3a9c01 seq=123456\ntemp=21.5,hum=40\n")
	b.Run("datagram", func(b *testing.B) {
		b.SetBytes(int64(len(dgram)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := wire.ParseDatagram(dgram); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ack", func(b *testing.B) {
		dst := make([]byte, 0, 32)
		b.ReportAllocs()
		for b.Loop() {
			dst = wire.AppendAck(dst[:0], 123456)
		}
	})
}

// BenchmarkFramerInlet1 frames a pipelined acknowledged stream ("<seq> <counter>\n"
// lines in 16 KB chunks) and parses each line's seq, as an acknowledged TCP
// reader does.
func BenchmarkFramerInlet1(b *testing.B) {
	var stream []byte
	for seq := 100000; len(stream) < 1<<20; seq++ {
		stream = fmt.Appendf(stream, "%d %d\n", seq, seq)
	}
	msgs := 0
	emit := func(line []byte) {
		if _, _, err := wire.ParseMessage(line); err != nil {
			b.Fatal(err)
		}
		msgs++
	}
	f := wire.Framer{Max: wire.DefaultMaxMessage}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		feedChunks(&f, stream, 16<<10, emit)
	}
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
}
