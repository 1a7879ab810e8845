package client_test

import (
	"testing"

	"github.com/inletdev/inlet/client"
)

// FuzzServerLine: the parser of server lines never panics, accepts only what it
// can write back, and reads its own output the same way. Seeds are in
// testdata/fuzz/FuzzServerLine.
func FuzzServerLine(f *testing.F) {
	f.Fuzz(func(t *testing.T, line []byte) {
		kind, n, reason, err := client.ParseServerLine(line)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("%q: negative number %d", line, n)
		}
		if (kind == "ack" || kind == "err") && n == 0 {
			t.Fatalf("%q: seq 0 accepted", line)
		}
		text, err := client.FormatServerLine(line)
		if err != nil || text == "" {
			t.Fatalf("%q: format %q, %v", line, text, err)
		}
		kind2, n2, reason2, err := client.ParseServerLine([]byte(text + "\n"))
		if err != nil || kind2 != kind || n2 != n || reason2 != reason {
			t.Fatalf("%q → %q → %s %d %q %v; want %s %d %q", line, text, kind2, n2, reason2, err, kind, n, reason)
		}
	})
}

func TestParseServerLine(t *testing.T) {
	for _, tc := range []struct {
		line   string
		kind   string
		n      int64
		reason string
	}{
		{"INLET/1 OK last=0\n", "hello-ok", 0, ""},
		{"INLET/1 OK last=9223372036854775807\n", "hello-ok", 1<<63 - 1, ""},
		{"INLET/1 OK last=12 node=a\r\n", "hello-ok", 12, ""}, // fields a newer server may add
		{"INLET/1 ERR unauthorized\n", "hello-err", 0, "unauthorized"},
		{"ACK 17\n", "ack", 17, ""},
		{"ACK 0042", "ack", 42, ""},
		{"ERR 3 too-long\n", "err", 3, "too-long"},
		{"ERR 3 bad-seq\n", "err", 3, "bad-seq"},
		{"ACK 0\n", "", 0, ""},
		{"ACK +5\n", "", 0, ""},
		{"ACK 9223372036854775808\n", "", 0, ""},
		{"ACK  5\n", "", 0, ""},
		{"ERR 3\n", "", 0, ""},
		{"ERR 3 \n", "", 0, ""},
		{"INLET/1 OK\n", "", 0, ""},
		{"INLET/1 OK last=\n", "", 0, ""},
		{"INLET/1 OK last=1 junk\n", "", 0, ""},
		{"INLET/1 ERR \n", "", 0, ""},
		{"INLET/2 OK last=1\n", "", 0, ""},
		{"ack 1\n", "", 0, ""},
		{"\n", "", 0, ""},
	} {
		kind, n, reason, err := client.ParseServerLine([]byte(tc.line))
		if tc.kind == "" {
			if err == nil {
				t.Errorf("%q: accepted as %s %d %q", tc.line, kind, n, reason)
			}
			continue
		}
		if err != nil || kind != tc.kind || n != tc.n || reason != tc.reason {
			t.Errorf("%q: %s %d %q %v; want %s %d %q", tc.line, kind, n, reason, err, tc.kind, tc.n, tc.reason)
		}
	}
}
