package wire_test

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/inletdev/inlet/wire"
)

func TestFramer(t *testing.T) {
	const max = 8
	s8 := strings.Repeat("8", max)   // exactly Max
	s9 := strings.Repeat("9", max+1) // Max+1
	long := strings.Repeat("L", 50)  // far over Max
	for _, c := range []struct {
		name  string
		in    string
		clean bool
		want  framed
	}{
		{name: "empty stream", in: "", clean: true},
		{name: "empty stream unclean", in: "", clean: false},
		{name: "crlf", in: "41\r\n", clean: true, want: framed{msgs: []string{"41"}}},
		{name: "crlf lines", in: "41\r\n42\r\n43\r\n", clean: true, want: framed{msgs: []string{"41", "42", "43"}}},
		{name: "lf only", in: "41\n42\n", clean: true, want: framed{msgs: []string{"41", "42"}}},
		{name: "mixed endings", in: "1\n2\r\n3\n", clean: true, want: framed{msgs: []string{"1", "2", "3"}}},
		{name: "empty lines skipped", in: "\r\n\n\r\n1\r\n\r\n\n2\n", clean: true, want: framed{msgs: []string{"1", "2"}}},
		{name: "only crlf", in: "\r\n\r\n\r\n", clean: true},
		{name: "only lf", in: "\n", clean: true},
		{name: "one cr removed", in: "a\r\r\n", clean: true, want: framed{msgs: []string{"a\r"}}},
		{name: "lone cr line", in: "\r\r\n", clean: true, want: framed{msgs: []string{"\r"}}},
		{name: "cr inside", in: "a\rb\r\n", clean: true, want: framed{msgs: []string{"a\rb"}}},
		{name: "clean tail", in: "41\n42", clean: true, want: framed{msgs: []string{"41", "42"}}},
		{name: "clean tail cr removed", in: "41\n42\r", clean: true, want: framed{msgs: []string{"41", "42"}}},
		{name: "clean tail one cr removed", in: "42\r\r", clean: true, want: framed{msgs: []string{"42\r"}}},
		{name: "clean tail only cr", in: "41\n\r", clean: true, want: framed{msgs: []string{"41"}}},
		{name: "clean tail without any newline", in: "hello", clean: true, want: framed{msgs: []string{"hello"}}},
		{name: "unclean tail", in: "41\n42", clean: false, want: framed{msgs: []string{"41"}, truncated: true}},
		{name: "unclean tail with cr", in: "41\n42\r", clean: false, want: framed{msgs: []string{"41"}, truncated: true}},
		{name: "unclean without tail", in: "41\n42\n", clean: false, want: framed{msgs: []string{"41", "42"}}},
		{name: "exactly max", in: s8 + "\n", clean: true, want: framed{msgs: []string{s8}}},
		{name: "max+1", in: s9 + "\n", clean: true, want: framed{tooLong: 1}},
		{name: "max then crlf", in: s8 + "\r\n", clean: true, want: framed{msgs: []string{s8}}},
		{name: "max+1 then crlf", in: s9 + "\r\n", clean: true, want: framed{tooLong: 1}},
		{name: "max and cr then crlf", in: s8 + "\r\r\n", clean: true, want: framed{tooLong: 1}},
		{name: "clean tail exactly max", in: s8, clean: true, want: framed{msgs: []string{s8}}},
		{name: "clean tail max and cr", in: s8 + "\r", clean: true, want: framed{msgs: []string{s8}}},
		{name: "clean tail max+1", in: s9, clean: true, want: framed{tooLong: 1}},
		{name: "clean tail far too long", in: long, clean: true, want: framed{tooLong: 1}},
		{name: "unclean tail max+1", in: s9, clean: false, want: framed{truncated: true}},
		{name: "unclean tail far too long", in: long, clean: false, want: framed{tooLong: 1}},
		{name: "too long then valid", in: long + "\nok\n", clean: true, want: framed{msgs: []string{"ok"}, tooLong: 1}},
		{name: "too long crlf then valid", in: long + "\r\nok\r\n", clean: true, want: framed{msgs: []string{"ok"}, tooLong: 1}},
		{name: "valid, too long, valid", in: "a\n" + long + "\nb\n", clean: true, want: framed{msgs: []string{"a", "b"}, tooLong: 1}},
		{name: "two too long", in: long + "\n" + s9 + "\n" + s8 + "\n", clean: true, want: framed{msgs: []string{s8}, tooLong: 2}},
		{name: "too long then tail", in: long + "\nend", clean: true, want: framed{msgs: []string{"end"}, tooLong: 1}},
		{name: "nul bytes kept", in: "a\x00b\n\x00\n\x00\x00\r\n", clean: true, want: framed{msgs: []string{"a\x00b", "\x00", "\x00\x00"}}},
		{name: "invalid utf-8 kept", in: "\xff\xfe\xc3\n\x80abc\n", clean: true, want: framed{msgs: []string{"\xff\xfe\xc3", "\x80abc"}}},
		{name: "control characters kept", in: "\x1b[0m\t\x7f\n", clean: true, want: framed{msgs: []string{"\x1b[0m\t\x7f"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.in)
			if m := model(in, max, c.clean); !m.equal(c.want) {
				t.Fatalf("model disagrees with the table: model %v, want %v", m, c.want)
			}
			// One Feed, the same stream split in two at every byte boundary, and
			// one byte per Feed all frame alike.
			if got := frame(t, &wire.Framer{Max: max}, [][]byte{in}, c.clean); !got.equal(c.want) {
				t.Errorf("one Feed: got %v, want %v", got, c.want)
			}
			for i := 0; i <= len(in); i++ {
				if got := frame(t, &wire.Framer{Max: max}, split(in, i), c.clean); !got.equal(c.want) {
					t.Errorf("split at %d: got %v, want %v", i, got, c.want)
				}
			}
			for i := 0; i <= len(in); i++ {
				for j := i; j <= len(in); j++ {
					chunks := [][]byte{in[:i], in[i:j], in[j:]}
					if got := frame(t, &wire.Framer{Max: max}, chunks, c.clean); !got.equal(c.want) {
						t.Fatalf("split at %d and %d: got %v, want %v", i, j, got, c.want)
					}
				}
			}
			if got := frame(t, &wire.Framer{Max: max}, bytewise(in), c.clean); !got.equal(c.want) {
				t.Errorf("byte by byte: got %v, want %v", got, c.want)
			}
		})
	}
}

func TestFramerEveryBoundaryRealistic(t *testing.T) {
	// A recorded-looking stream at the default limit, cut at every byte.
	in := []byte("1\r\n2\r\n3\r\ntemp=21.5,hum=40\r\n{\"t\":1}\n\r\n4\r\n")
	want := framed{msgs: []string{"1", "2", "3", "temp=21.5,hum=40", `{"t":1}`, "4"}}
	for i := 0; i <= len(in); i++ {
		if got := frame(t, &wire.Framer{Max: wire.DefaultMaxMessage}, split(in, i), false); !got.equal(want) {
			t.Errorf("split at %d: got %v, want %v", i, got, want)
		}
	}
}

func TestFramerTooLongCountedOncePerMessage(t *testing.T) {
	// A message over Max that arrives over many Feeds counts once, in the Feed
	// where it first exceeds Max, and the stream goes on.
	f := wire.Framer{Max: 8}
	var msgs []string
	emit := func(m []byte) { msgs = append(msgs, string(m)) }
	total := 0
	for i := range 100 {
		n := f.Feed([]byte("x"), emit)
		total += n
		want := 0
		if i+1 == 10 { // the message first exceeds Max+1 bytes
			want = 1
		}
		if n != want {
			t.Fatalf("Feed of byte %d: tooLong = %d, want %d", i+1, n, want)
		}
	}
	total += f.Feed([]byte("xx\r"), emit)
	total += f.Feed([]byte("\nok\r"), emit)
	total += f.Feed([]byte("\n"), emit)
	if total != 1 || len(msgs) != 1 || msgs[0] != "ok" {
		t.Fatalf("tooLong = %d, msgs = %q; want 1, [ok]", total, msgs)
	}
	if tr, tl := f.End(true, emit); tr || tl {
		t.Fatalf("End = %v, %v after the stream recovered", tr, tl)
	}
}

func TestFramerDiscardingHoldsNothing(t *testing.T) {
	f := wire.Framer{Max: 8}
	emit := func(m []byte) { t.Fatalf("unexpected message %q", m) }
	if n := f.Feed([]byte("0123456789"), emit); n != 1 {
		t.Fatalf("tooLong = %d, want 1", n)
	}
	if f.Pending() {
		t.Fatal("Pending while discarding a too-long message")
	}
	// The discarded message's remainder, unclean: already counted, nothing to truncate.
	if tr, tl := f.End(false, emit); tr || tl {
		t.Fatalf("End(unclean) while discarding = %v, %v; want false, false", tr, tl)
	}
}

// tenMB is 10 MB without a newline, the way an attacker or a broken device sends it.
var tenMB = bytes.Repeat([]byte("A"), 10<<20)

func feedChunks(f *wire.Framer, p []byte, size int, emit func([]byte)) (tooLong int) {
	for len(p) > 0 {
		n := min(size, len(p))
		tooLong += f.Feed(p[:n], emit)
		p = p[n:]
	}
	return tooLong
}

func TestFramer10MBWithoutNewline(t *testing.T) {
	f := wire.Framer{Max: wire.DefaultMaxMessage}
	var msgs []string
	emit := func(m []byte) { msgs = append(msgs, string(m)) }
	if n := feedChunks(&f, tenMB, 16<<10, emit); n != 1 {
		t.Fatalf("tooLong = %d, want 1", n)
	}
	if f.Pending() || len(msgs) != 0 {
		t.Fatalf("Pending = %v, msgs = %d after a too-long message", f.Pending(), len(msgs))
	}
	// The connection stays usable.
	if n := f.Feed([]byte("AAAA\r\nhello\r\n"), emit); n != 0 || len(msgs) != 1 || msgs[0] != "hello" {
		t.Fatalf("after the long message: tooLong = %d, msgs = %q", n, msgs)
	}
}

func TestFramerMemoryBounded(t *testing.T) {
	// Memory: a long message is never buffered past Max+1 bytes. With chunks
	// larger than Max nothing is allocated at all; with chunks smaller than Max the
	// framer holds at most Max+1 bytes (plus append's slack) and then discards.
	for _, size := range []int{1000, 16 << 10} {
		allocs := testing.AllocsPerRun(3, func() {
			f := wire.Framer{Max: wire.DefaultMaxMessage}
			if n := feedChunks(&f, tenMB, size, func([]byte) {}); n != 1 {
				t.Fatalf("tooLong = %d, want 1", n)
			}
		})
		if allocs > 10 {
			t.Errorf("chunks of %d: %v allocations for 10 MB without newline", size, allocs)
		}
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f := wire.Framer{Max: wire.DefaultMaxMessage}
	feedChunks(&f, tenMB, 1000, func([]byte) {})
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 4*(wire.DefaultMaxMessage+1) {
		t.Errorf("framing 10 MB without newline allocated %d bytes, want at most about Max+1 (%d)", got, wire.DefaultMaxMessage+1)
	}
}

func TestFramerReuse(t *testing.T) {
	// After End, or Reset, the framer starts a new stream with no leftovers.
	f := wire.Framer{Max: 8}
	var msgs []string
	emit := func(m []byte) { msgs = append(msgs, string(m)) }

	f.Feed([]byte("part"), emit)
	if !f.Pending() {
		t.Fatal("no Pending with a partial message")
	}
	if tr, _ := f.End(false, emit); !tr {
		t.Fatal("End(unclean) with a partial message: not truncated")
	}
	f.Feed([]byte("new\n"), emit)

	f.Feed([]byte("0123456789"), emit) // discarding
	f.End(true, emit)
	f.Feed([]byte("after\n"), emit) // not swallowed as the rest of the long message

	f.Feed([]byte("left"), emit)
	f.Reset()
	f.Feed([]byte("over\n"), emit)

	f.Feed([]byte("0123456789"), emit)
	f.Reset()
	f.Feed([]byte("again\n"), emit)

	want := []string{"new", "after", "over", "again"}
	if strings.Join(msgs, ",") != strings.Join(want, ",") {
		t.Fatalf("msgs = %q, want %q", msgs, want)
	}
}

func TestFramerResetAfterLargeMessage(t *testing.T) {
	// Reset drops a large held message (and its buffer); the framer works on.
	f := wire.Framer{Max: 64 << 10}
	f.Feed(bytes.Repeat([]byte("x"), 32<<10), func([]byte) {})
	f.Reset()
	if f.Pending() {
		t.Fatal("Pending after Reset")
	}
	var msgs []string
	f.Feed([]byte("12345\r\n67"), func(m []byte) { msgs = append(msgs, string(m)) })
	f.End(true, func(m []byte) { msgs = append(msgs, string(m)) })
	if strings.Join(msgs, ",") != "12345,67" {
		t.Fatalf("msgs = %q", msgs)
	}
}

func TestFramerFeedWholeLinesDoesNotAllocate(t *testing.T) {
	p := bytes.Repeat([]byte("12345\r\n"), 5000) // 35000 bytes: lines straddle chunks
	f := wire.Framer{Max: wire.DefaultMaxMessage}
	n := 0
	emit := func([]byte) { n++ }
	allocs := testing.AllocsPerRun(10, func() {
		feedChunks(&f, p, 16<<10, emit)
	})
	// Lines that straddle a chunk boundary are held in the framer's buffer, which is
	// reused: after the warm-up run nothing is allocated.
	if allocs != 0 {
		t.Errorf("%v allocations per %d-byte stream", allocs, len(p))
	}
}
