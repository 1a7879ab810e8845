package wire_test

import (
	"bytes"
	"testing"

	"github.com/inletdev/inlet/wire"
)

// FuzzFramer checks that the Framer, fed data in the chunks that cuts describe
// (see chunked), frames it exactly as the model frames the whole stream, for a
// stream that ends cleanly and one that does not. max is kept small so that the
// too-long paths are exercised. The seed corpus in testdata/fuzz/FuzzFramer holds
// streams cut at every byte boundary.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("41\r\n42\r\n"), []byte{3}, byte(8))
	f.Fuzz(func(t *testing.T, data, cuts []byte, max byte) {
		m := int(max % 16)
		chunks := chunked(data, cuts)
		for _, clean := range []bool{true, false} {
			want := model(data, m, clean)
			got := frame(t, &wire.Framer{Max: m}, chunks, clean)
			if !got.equal(want) {
				t.Fatalf("max %d, clean %v, chunks %q:\n got %v\nwant %v", m, clean, chunks, got, want)
			}
			checkMessages(t, got, m)
		}
		// A framer that ended a stream, cleanly or not, frames the next one afresh.
		fr := wire.Framer{Max: m}
		frame(t, &fr, chunks, false)
		if got, want := frame(t, &fr, chunks, true), model(data, m, true); !got.equal(want) {
			t.Fatalf("reused after End: got %v, want %v", got, want)
		}
		// So does one that was Reset in the middle of a stream.
		fr.Feed(chunks[0], func([]byte) {})
		fr.Reset()
		if got, want := frame(t, &fr, chunks, true), model(data, m, true); !got.equal(want) {
			t.Fatalf("reused after Reset: got %v, want %v", got, want)
		}
	})
}

// FuzzSplitDatagram checks that SplitDatagram never panics and frames a datagram
// like the model frames it as a stream that ends cleanly once its trailing NULs
// are removed, and like a Framer does.
func FuzzSplitDatagram(f *testing.F) {
	f.Add([]byte("5\x00\x00\x00\x00\x00\x00\x00\x00\x00"), byte(8))
	f.Fuzz(func(t *testing.T, data []byte, max byte) {
		m := int(max % 16)
		orig := bytes.Clone(data)
		got := datagram(data, m)
		if !bytes.Equal(data, orig) {
			t.Fatalf("SplitDatagram modified its input")
		}
		trimmed := bytes.TrimRight(data, "\x00")
		if want := model(trimmed, m, true); !got.equal(want) {
			t.Fatalf("max %d: got %v, model %v", m, got, want)
		}
		if fr := frame(t, &wire.Framer{Max: m}, [][]byte{trimmed}, true); !got.equal(fr) {
			t.Fatalf("max %d: got %v, Framer %v", m, got, fr)
		}
		checkMessages(t, got, m)
	})
}
