package wire_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/inletdev/inlet/wire"
)

func TestSplitDatagram(t *testing.T) {
	const max = 8
	s8 := strings.Repeat("8", max)
	s9 := strings.Repeat("9", max+1)
	for _, c := range []struct {
		name string
		in   string
		want framed
	}{
		// The tutorial's sketch sends a fixed 10-byte buffer: "5" and nine NULs.
		{"tutorial padding", "5\x00\x00\x00\x00\x00\x00\x00\x00\x00", framed{msgs: []string{"5"}}},
		{"no newline", "hello", framed{msgs: []string{"hello"}}},
		{"one line", "hello\n", framed{msgs: []string{"hello"}}},
		{"multi-line", "1\n2\n3\n", framed{msgs: []string{"1", "2", "3"}}},
		{"multi-line without last newline", "1\n2\n3", framed{msgs: []string{"1", "2", "3"}}},
		{"crlf", "1\r\n2\r\n", framed{msgs: []string{"1", "2"}}},
		{"cr without newline", "1\r", framed{msgs: []string{"1"}}},
		{"one cr removed", "1\r\r\n", framed{msgs: []string{"1\r"}}},
		{"padding after crlf", "7\r\n\x00\x00\x00", framed{msgs: []string{"7"}}},
		{"padding after cr", "7\r\x00\x00", framed{msgs: []string{"7"}}},
		{"empty", "", framed{}},
		{"all nuls", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", framed{}},
		{"only newlines", "\n\r\n\n", framed{}},
		{"nul inside kept", "a\x00b\x00\x00", framed{msgs: []string{"a\x00b"}}},
		{"nul before newline kept", "a\x00\nb\x00", framed{msgs: []string{"a\x00", "b"}}},
		{"nul line kept", "\x00\x00\n\x00", framed{msgs: []string{"\x00\x00"}}},
		{"leading nuls kept", "\x00\x005", framed{msgs: []string{"\x00\x005"}}},
		{"invalid utf-8 kept", "\xff\xfe\n", framed{msgs: []string{"\xff\xfe"}}},
		{"exactly max", s8, framed{msgs: []string{s8}}},
		{"exactly max with crlf", s8 + "\r\n", framed{msgs: []string{s8}}},
		{"max+1", s9, framed{tooLong: 1}},
		{"max+1 padded", s9 + "\x00\x00", framed{tooLong: 1}},
		{"too long then valid", s9 + "\nok", framed{msgs: []string{"ok"}, tooLong: 1}},
		{"two too long", s9 + "\n" + s9 + "\r\n" + s8, framed{msgs: []string{s8}, tooLong: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.in)
			orig := bytes.Clone(in)
			if got := datagram(in, max); !got.equal(c.want) {
				t.Errorf("SplitDatagram(%q) = %v, want %v", c.in, got, c.want)
			}
			if !bytes.Equal(in, orig) {
				t.Errorf("SplitDatagram modified its input")
			}
			if m := model(bytes.TrimRight(in, "\x00"), max, true); !m.equal(c.want) {
				t.Errorf("model disagrees with the table: %v", m)
			}
		})
	}
}

func TestSplitDatagramDefaultMax(t *testing.T) {
	in := bytes.Repeat([]byte("x"), wire.DefaultMaxMessage)
	if got := datagram(in, wire.DefaultMaxMessage); len(got.msgs) != 1 || got.tooLong != 0 {
		t.Errorf("a datagram of exactly DefaultMaxMessage bytes: %d messages, tooLong %d", len(got.msgs), got.tooLong)
	}
	in = append(in, 'x')
	if got := datagram(in, wire.DefaultMaxMessage); len(got.msgs) != 0 || got.tooLong != 1 {
		t.Errorf("a datagram of DefaultMaxMessage+1 bytes: %d messages, tooLong %d", len(got.msgs), got.tooLong)
	}
}
