package wire_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/inletdev/inlet/wire"
)

// framed is what framing a stream produced.
type framed struct {
	msgs      []string
	tooLong   int
	truncated bool
}

func (r framed) String() string {
	return fmt.Sprintf("msgs=%q tooLong=%d truncated=%v", r.msgs, r.tooLong, r.truncated)
}

func (r framed) equal(o framed) bool {
	return slices.Equal(r.msgs, o.msgs) && r.tooLong == o.tooLong && r.truncated == o.truncated
}

// model frames a whole stream at once, the obvious way, as docs/protocol.md (plain mode) reads:
// split on '\n', remove one '\r' from the end of each line, skip empty lines and
// count lines longer than max. The bytes after the last '\n' are a final line when
// the stream ends cleanly; otherwise they are truncated, unless they are already
// over max+1 bytes: such a message is too long whatever follows (even "\r\n"), so
// it was counted as too long when it arrived and is not counted twice.
func model(stream []byte, max int, clean bool) framed {
	var r framed
	line := func(l []byte) {
		l = bytes.TrimSuffix(l, []byte("\r"))
		switch {
		case len(l) > max:
			r.tooLong++
		case len(l) > 0:
			r.msgs = append(r.msgs, string(l))
		}
	}
	lines := bytes.Split(stream, []byte("\n"))
	tail := lines[len(lines)-1]
	for _, l := range lines[:len(lines)-1] {
		line(l)
	}
	switch {
	case clean:
		line(tail)
	case len(tail) > max+1:
		r.tooLong++
	case len(tail) > 0:
		r.truncated = true
	}
	return r
}

// frame feeds chunks to f one Feed at a time, then ends the stream.
func frame(t testing.TB, f *wire.Framer, chunks [][]byte, clean bool) framed {
	t.Helper()
	var r framed
	emit := func(m []byte) { r.msgs = append(r.msgs, string(m)) }
	for _, c := range chunks {
		before := bytes.Clone(c)
		r.tooLong += f.Feed(c, emit)
		if !bytes.Equal(c, before) {
			t.Fatalf("Feed modified its input: %q became %q", before, c)
		}
	}
	truncated, tooLong := f.End(clean, emit)
	r.truncated = truncated
	if tooLong {
		r.tooLong++
	}
	if f.Pending() {
		t.Fatalf("Pending after End")
	}
	return r
}

// split cuts p in two at i.
func split(p []byte, i int) [][]byte { return [][]byte{p[:i], p[i:]} }

// bytewise cuts p into one-byte chunks.
func bytewise(p []byte) [][]byte {
	var c [][]byte
	for i := range p {
		c = append(c, p[i:i+1])
	}
	return c
}

// chunked cuts p into chunks whose lengths are the bytes of cuts in turn (0 gives
// an empty Feed); what remains after the cuts run out is the last chunk.
func chunked(p, cuts []byte) [][]byte {
	var c [][]byte
	for _, n := range cuts {
		k := min(int(n), len(p))
		c = append(c, p[:k])
		p = p[k:]
	}
	return append(c, p)
}

// datagram is SplitDatagram's result in the shape of framed.
func datagram(p []byte, max int) framed {
	var r framed
	r.tooLong = wire.SplitDatagram(p, max, func(m []byte) { r.msgs = append(r.msgs, string(m)) })
	return r
}

// checkMessages checks what every framed message must be.
func checkMessages(t testing.TB, r framed, max int) {
	t.Helper()
	for _, m := range r.msgs {
		if m == "" || len(m) > max || bytes.IndexByte([]byte(m), '\n') >= 0 {
			t.Fatalf("bad message %q (max %d)", m, max)
		}
	}
}

func TestModel(t *testing.T) {
	// The model itself, on the cases the protocol spells out.
	for _, c := range []struct {
		in    string
		clean bool
		want  framed
	}{
		{"41\r\n", true, framed{msgs: []string{"41"}}},
		{"a\r\r\nb", true, framed{msgs: []string{"a\r", "b"}}},
		{"a\nb", false, framed{msgs: []string{"a"}, truncated: true}},
		{"123456789\n12345678\r\n", true, framed{msgs: []string{"12345678"}, tooLong: 1}},
		{"1234567890", false, framed{tooLong: 1}},
		{"123456789", false, framed{truncated: true}},
		{"123456789", true, framed{tooLong: 1}},
	} {
		if got := model([]byte(c.in), 8, c.clean); !got.equal(c.want) {
			t.Errorf("model(%q, clean=%v) = %v, want %v", c.in, c.clean, got, c.want)
		}
	}
}
