package wire_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/inletdev/inlet/wire"
)

// Acknowledged mode, INLET/1 (docs/protocol.md): the hello and datagram header
// grammar, message lines, and the server's answers.

const (
	deviceChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"
	bootChars   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	maxSeq      = "9223372036854775807" // 2^63-1
)

var (
	dev64  = strings.Repeat("d", 64)
	boot32 = strings.Repeat("B", 32)
	tok256 = strings.Repeat("t", 256)
)

// --- an independent model of the grammar, used by the table and fuzz tests ---

func validDevice(s string) bool { return validChars(s, 64, deviceChars) }
func validBoot(s string) bool   { return validChars(s, 32, bootChars) }

func validChars(s string, max int, chars string) bool {
	if len(s) < 1 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.Contains(chars, s[i:i+1]) {
			return false
		}
	}
	return true
}

// validToken: 1 to MaxTokenLen visible ASCII characters (no space, no control).
func validToken(s string) bool {
	if len(s) < 1 || len(s) > wire.MaxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// modelSeq: decimal digits only (at most 19 of them), 1 to 2^63-1.
func modelSeq(s string) (int64, bool) {
	if len(s) < 1 || len(s) > 19 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n < 1 || n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

// modelHello parses a hello line (or a datagram header, withSeq) by splitting
// on single spaces, independently of the implementation.
func modelHello(line string, withSeq bool) (wire.Hello, bool) {
	var h wire.Hello
	rest, ok := strings.CutPrefix(line, "INLET/1 ")
	if !ok {
		return h, false
	}
	seen := map[string]bool{}
	for _, f := range strings.Split(rest, " ") {
		k, v, ok := strings.Cut(f, "=")
		if !ok || seen[k] {
			return h, false
		}
		seen[k] = true
		switch k {
		case "id":
			if !validDevice(v) {
				return h, false
			}
			h.Device = v
		case "boot":
			if !validBoot(v) {
				return h, false
			}
			h.Boot = v
		case "token":
			if !validToken(v) {
				return h, false
			}
			h.Token = v
		case "seq":
			n, ok := modelSeq(v)
			if !withSeq || !ok {
				return h, false
			}
			h.Seq = n
		default:
			return h, false
		}
	}
	if !seen["id"] || !seen["boot"] || withSeq != seen["seq"] {
		return h, false
	}
	return h, true
}

// encodeHello writes h in canonical form: INLET/1 id=.. boot=..[ seq=..][ token=..].
func encodeHello(h wire.Hello) string {
	s := "INLET/1 id=" + h.Device + " boot=" + h.Boot
	if h.Seq != 0 {
		s += " seq=" + strconv.FormatInt(h.Seq, 10)
	}
	if h.Token != "" {
		s += " token=" + h.Token
	}
	return s
}

// checkHello checks that a parsed hello satisfies every validity rule.
func checkHello(t testing.TB, h wire.Hello, withSeq bool) {
	t.Helper()
	if !validDevice(h.Device) {
		t.Fatalf("accepted invalid device %q", h.Device)
	}
	if !validBoot(h.Boot) {
		t.Fatalf("accepted invalid boot %q", h.Boot)
	}
	if h.Token != "" && !validToken(h.Token) {
		t.Fatalf("accepted invalid token %q", h.Token)
	}
	if withSeq && h.Seq < 1 || !withSeq && h.Seq != 0 {
		t.Fatalf("seq %d (datagram %v)", h.Seq, withSeq)
	}
}

// --- ParseHello ---

func TestParseHello(t *testing.T) {
	ok := func(dev, boot, tok string) *wire.Hello { return &wire.Hello{Device: dev, Boot: boot, Token: tok} }
	tests := []struct {
		line string
		want *wire.Hello // nil: rejected
	}{
		// Valid.
		{"INLET/1 id=dev1 boot=a1", ok("dev1", "a1", "")},
		{"INLET/1 id=dev1 boot=a1 token=s3cr=t!", ok("dev1", "a1", "s3cr=t!")},
		{"INLET/1 boot=a1 id=dev1", ok("dev1", "a1", "")},
		{"INLET/1 token=x boot=a1 id=dev1", ok("dev1", "a1", "x")},
		{"INLET/1 boot=a1 token=x id=dev1", ok("dev1", "a1", "x")},
		{"INLET/1 id=x boot=Z", ok("x", "Z", "")},
		{"INLET/1 id=" + deviceChars[:64] + " boot=b", ok(deviceChars[:64], "b", "")},
		{"INLET/1 id=" + deviceChars[2:] + " boot=b", ok(deviceChars[2:], "b", "")},
		{"INLET/1 id=a.b_c:d-e boot=b", ok("a.b_c:d-e", "b", "")},
		{"INLET/1 id=- boot=0", ok("-", "0", "")},
		{"INLET/1 id=" + dev64 + " boot=" + boot32, ok(dev64, boot32, "")},
		{"INLET/1 id=d boot=" + bootChars[:32], ok("d", bootChars[:32], "")},
		{"INLET/1 id=d boot=" + bootChars[30:], ok("d", bootChars[30:], "")},
		{"INLET/1 id=d boot=b token=" + tok256, ok("d", "b", tok256)},
		{"INLET/1 id=d boot=b token=~!\"#$%&'()*+,-./", ok("d", "b", "~!\"#$%&'()*+,-./")},

		// Prefix.
		{"", nil},
		{"INLET/1", nil},
		{"INLET/1 ", nil},
		{"INLET/1id=d boot=b", nil},
		{"inlet/1 id=d boot=b", nil},
		{"Inlet/1 id=d boot=b", nil},
		{"INLET/2 id=d boot=b", nil},
		{"INLET/10 id=d boot=b", nil},
		{"INLET/1\tid=d boot=b", nil},
		{" INLET/1 id=d boot=b", nil},
		{"id=d boot=b", nil},

		// Required fields.
		{"INLET/1 id=d", nil},
		{"INLET/1 boot=b", nil},
		{"INLET/1 token=t", nil},
		{"INLET/1 id=d token=t", nil},

		// Device id.
		{"INLET/1 id= boot=b", nil},
		{"INLET/1 id=" + dev64 + "x boot=b", nil},
		{"INLET/1 id=a/b boot=b", nil},
		{"INLET/1 id=a,b boot=b", nil},
		{"INLET/1 id=a=b boot=b", nil},
		{"INLET/1 id=é boot=b", nil},
		{"INLET/1 id=a\x00 boot=b", nil},
		{"INLET/1 id=a\r boot=b", nil},
		{"INLET/1 id=a\tb boot=b", nil},

		// Boot.
		{"INLET/1 id=d boot=", nil},
		{"INLET/1 id=d boot=" + boot32 + "x", nil},
		{"INLET/1 id=d boot=a-b", nil},
		{"INLET/1 id=d boot=a.b", nil},
		{"INLET/1 id=d boot=a_b", nil},
		{"INLET/1 id=d boot=a:b", nil},
		{"INLET/1 id=d boot=b\r", nil},

		// Token.
		{"INLET/1 id=d boot=b token=", nil},
		{"INLET/1 id=d boot=b token=" + tok256 + "x", nil},
		{"INLET/1 id=d boot=b token=a\x01", nil},
		{"INLET/1 id=d boot=b token=a\x7f", nil},
		{"INLET/1 id=d boot=b token=\xff", nil},
		{"INLET/1 id=d boot=b token=a\r", nil},

		// Duplicates, unknown keys, malformed fields.
		{"INLET/1 id=d id=d boot=b", nil},
		{"INLET/1 id=d boot=b id=e", nil},
		{"INLET/1 id=d boot=b boot=b", nil},
		{"INLET/1 id=d boot=b token=t token=t", nil},
		{"INLET/1 id=d boot=b x=1", nil},
		{"INLET/1 id=d boot=b ID=d", nil},
		{"INLET/1 ID=d boot=b", nil},
		{"INLET/1 id=d BOOT=b", nil},
		{"INLET/1 id=d boot=b TOKEN=t", nil},
		{"INLET/1 id=d boot=b =x", nil},
		{"INLET/1 id=d boot=b token", nil},
		{"INLET/1 id=d boot=b extra", nil},
		{"INLET/1 id d boot=b", nil},

		// Seq is for datagrams only.
		{"INLET/1 id=d boot=b seq=1", nil},
		{"INLET/1 seq=1 id=d boot=b", nil},

		// Spaces.
		{"INLET/1  id=d boot=b", nil},
		{"INLET/1 id=d  boot=b", nil},
		{"INLET/1 id=d boot=b ", nil},
		{"INLET/1 id=d boot=b  ", nil},
		{"INLET/1 id=d boot=b token=t ", nil},
		{"INLET/1 id=d boot=b\t", nil},
		{"INLET/1 id=d boot=b\n", nil},
	}
	for _, tt := range tests {
		h, err := wire.ParseHello([]byte(tt.line))
		if tt.want == nil {
			if err == nil {
				t.Errorf("ParseHello(%q) = %+v, want bad-hello", tt.line, h)
			} else if !errors.Is(err, wire.ErrBadHello) {
				t.Errorf("ParseHello(%q) error %v, want bad-hello", tt.line, err)
			}
		} else if err != nil || h != *tt.want {
			t.Errorf("ParseHello(%q) = %+v, %v; want %+v", tt.line, h, err, *tt.want)
		}
		mh, mok := modelHello(tt.line, false)
		if mok != (tt.want != nil) || mok && mh != *tt.want {
			t.Errorf("model(%q) = %+v, %v: the table disagrees with the model", tt.line, mh, mok)
		}
	}
}

func TestIsHello(t *testing.T) {
	for line, want := range map[string]bool{
		"INLET/1 id=d boot=b": true,
		"INLET/1 ":            true,
		"INLET/1":             false,
		"inlet/1 id=d":        false,
		"42":                  false,
		"":                    false,
	} {
		if got := wire.IsHello([]byte(line)); got != want {
			t.Errorf("IsHello(%q) = %v, want %v", line, got, want)
		}
	}
	if wire.HelloPrefix != "INLET/1 " {
		t.Errorf("HelloPrefix = %q", wire.HelloPrefix)
	}
}

// --- sequence numbers ---

func TestParseSeq(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // 0: rejected
	}{
		{"1", 1},
		{"7", 7},
		{"10", 10},
		{"123456789", 123456789},
		{"9223372036854775806", math.MaxInt64 - 1},
		{maxSeq, math.MaxInt64},
		{"007", 7},                  // leading zeros are decimal too
		{"0000000000000000001", 1},  // 19 characters
		{"00000000000000000001", 0}, // 20 characters
		{"", 0},
		{"0", 0},
		{"00", 0},
		{"+1", 0},
		{"-1", 0},
		{"-0", 0},
		{" 1", 0},
		{"1 ", 0},
		{"1 2", 0},
		{"9223372036854775808", 0},  // 2^63
		{"9999999999999999999", 0},  // 19 digits, too big
		{"10000000000000000000", 0}, // 20 digits
		{"18446744073709551616", 0}, // 2^64
		{"99999999999999999999999", 0},
		{"0x10", 0},
		{"0X1", 0},
		{"1f", 0},
		{"ff", 0},
		{"1e3", 0},
		{"1.0", 0},
		{"1_000", 0},
		{"1\x00", 0},
		{"1\r", 0},
		{"١", 0}, // Arabic-Indic digit one
	}
	for _, tt := range tests {
		got, err := wire.ParseSeq([]byte(tt.in))
		if tt.want == 0 {
			if err == nil || !errors.Is(err, wire.ErrBadSeq) {
				t.Errorf("ParseSeq(%q) = %d, %v; want bad-seq", tt.in, got, err)
			}
		} else if err != nil || got != tt.want {
			t.Errorf("ParseSeq(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
		if m, ok := modelSeq(tt.in); ok != (tt.want != 0) || m != tt.want {
			t.Errorf("modelSeq(%q) = %d, %v: the table disagrees with the model", tt.in, m, ok)
		}

		// The same rules inside a datagram header: any bad seq is a bad hello.
		// ("1\r" is left out: "\r\n" ends a header.)
		if !strings.HasSuffix(tt.in, "\r") {
			d := "INLET/1 id=d boot=b seq=" + tt.in + "\npayload"
			h, p, err := wire.ParseDatagram([]byte(d))
			if tt.want == 0 {
				if err == nil || !errors.Is(err, wire.ErrBadHello) {
					t.Errorf("ParseDatagram(%q) = %+v, %v; want bad-hello", d, h, err)
				}
			} else if err != nil || h.Seq != tt.want || string(p) != "payload" {
				t.Errorf("ParseDatagram(%q) = %+v, %q, %v; want seq %d", d, h, p, err, tt.want)
			}
		}

		// And in a message line.
		line := tt.in + " x"
		seq, payload, err := wire.ParseMessage([]byte(line))
		prefix, pok := wire.SeqPrefix([]byte(line))
		switch {
		case strings.Contains(tt.in, " "):
			// The seq ends at the first space: covered by TestParseMessage.
		case tt.want == 0:
			if err == nil || !errors.Is(err, wire.ErrBadSeq) || pok {
				t.Errorf("ParseMessage(%q) = %d, %q, %v; SeqPrefix %d, %v; want bad-seq", line, seq, payload, err, prefix, pok)
			}
		default:
			if err != nil || seq != tt.want || string(payload) != "x" || !pok || prefix != tt.want {
				t.Errorf("ParseMessage(%q) = %d, %q, %v; SeqPrefix %d, %v; want %d", line, seq, payload, err, prefix, pok, tt.want)
			}
		}
	}
}

// --- message lines ---

func TestParseMessage(t *testing.T) {
	tests := []struct {
		line    string
		seq     int64 // 0: bad-seq
		payload string
	}{
		{"1 hello", 1, "hello"},
		{"42 t=21.5 h=40", 42, "t=21.5 h=40"},
		{"3 ", 3, ""},
		{"3  ", 3, " "},
		{"3  x ", 3, " x "},
		{"5 a\rb\x00c", 5, "a\rb\x00c"},
		{maxSeq + " max", math.MaxInt64, "max"},
		{"1", 0, ""},
		{"42", 0, ""},
		{"", 0, ""},
		{" ", 0, ""},
		{" 1 x", 0, ""},
		{"0 x", 0, ""},
		{"-1 x", 0, ""},
		{"+1 x", 0, ""},
		{"0x1 x", 0, ""},
		{"9223372036854775808 x", 0, ""},
		{"1\tx", 0, ""},
		{"hello world", 0, ""},
		{"INLET/1 id=d boot=b", 0, ""},
	}
	for _, tt := range tests {
		seq, payload, err := wire.ParseMessage([]byte(tt.line))
		if tt.seq == 0 {
			if !errors.Is(err, wire.ErrBadSeq) {
				t.Errorf("ParseMessage(%q) = %d, %q, %v; want bad-seq", tt.line, seq, payload, err)
			}
		} else if err != nil || seq != tt.seq || string(payload) != tt.payload {
			t.Errorf("ParseMessage(%q) = %d, %q, %v; want %d, %q", tt.line, seq, payload, err, tt.seq, tt.payload)
		}
		// SeqPrefix finds the seq of any line ParseMessage accepts, and of no other.
		p, ok := wire.SeqPrefix([]byte(tt.line))
		if ok != (tt.seq != 0) || p != tt.seq && ok {
			t.Errorf("SeqPrefix(%q) = %d, %v; want %d", tt.line, p, ok, tt.seq)
		}
	}
}

func TestSeqPrefixOfTruncatedLine(t *testing.T) {
	// An over-long line is seen only by its head.
	head := []byte("17 " + strings.Repeat("x", 100))
	if seq, ok := wire.SeqPrefix(head); !ok || seq != 17 {
		t.Errorf("SeqPrefix = %d, %v; want 17", seq, ok)
	}
	// A head holding only digits has no seq yet: it may be cut in the middle of one.
	if seq, ok := wire.SeqPrefix([]byte("1234")); ok {
		t.Errorf("SeqPrefix(digits only) = %d, true; want false", seq)
	}
}

// --- datagrams ---

func TestParseDatagram(t *testing.T) {
	const hdr = "INLET/1 id=d boot=b seq=9"
	h9 := wire.Hello{Device: "d", Boot: "b", Seq: 9}
	tests := []struct {
		in      string
		want    *wire.Hello // nil: bad-hello
		payload string
	}{
		{hdr + "\nhello", &h9, "hello"},
		{hdr + "\r\nhello", &h9, "hello"},
		{hdr + "\nhello\n", &h9, "hello"},
		{hdr + "\nhello\r\n", &h9, "hello"},
		{hdr + "\r\nhello\r\n", &h9, "hello"},
		{hdr + "\nhello\n\n", &h9, "hello\n"},
		{hdr + "\nhello\r\n\r\n", &h9, "hello\r\n"},
		{hdr + "\nhello\r", &h9, "hello\r"},
		{hdr + "\nhello\n\r", &h9, "hello\n\r"},
		{hdr + "\na\nb\nc", &h9, "a\nb\nc"},
		{hdr + "\na\r\nb\r\n", &h9, "a\r\nb"},
		{hdr + "\nINLET/1 id=x boot=y seq=1", &h9, "INLET/1 id=x boot=y seq=1"},
		{hdr + "\n  spaced  ", &h9, "  spaced  "},
		{hdr + "\n\x00\xff", &h9, "\x00\xff"},
		{hdr + "\n", &h9, ""},
		{hdr + "\r\n", &h9, ""},
		{hdr + "\n\n", &h9, ""},
		{hdr + "\n\r\n", &h9, ""},
		{hdr + "\n\n\n", &h9, "\n"},
		{hdr + "\n\r", &h9, "\r"},
		{"INLET/1 seq=9 boot=b id=d\nx", &h9, "x"},
		{"INLET/1 boot=b seq=9 token=k id=d\nx", &wire.Hello{Device: "d", Boot: "b", Seq: 9, Token: "k"}, "x"},
		{"INLET/1 id=d boot=b seq=" + maxSeq + " token=k\nx", &wire.Hello{Device: "d", Boot: "b", Seq: math.MaxInt64, Token: "k"}, "x"},
		{"INLET/1 id=" + dev64 + " boot=" + boot32 + " seq=1 token=" + tok256 + "\nx", &wire.Hello{Device: dev64, Boot: boot32, Seq: 1, Token: tok256}, "x"},

		// The header follows the hello rules, and seq is required.
		{"INLET/1 id=d boot=b\nx", nil, ""},
		{"INLET/1 id=d boot=b token=k\nx", nil, ""},
		{"INLET/1 id=d seq=9\nx", nil, ""},
		{"INLET/1 boot=b seq=9\nx", nil, ""},
		{"INLET/1 id=d boot=b seq=9 seq=9\nx", nil, ""},
		{"INLET/1 id=d boot=b seq=9 seq=10\nx", nil, ""},
		{"INLET/1 id=d boot=b seq=\nx", nil, ""},
		{"INLET/1 id=d boot=b seq=0\nx", nil, ""},
		{"INLET/1 id=d boot=b seq=-1\nx", nil, ""},
		{"INLET/1 id=d boot=b seq=9 \nx", nil, ""},
		{"INLET/1 id=d boot=b seq=9 \r\nx", nil, ""},
		{"INLET/1 id=d boot=b  seq=9\nx", nil, ""},
		{"INLET/1 id=d boot=b seq=9\r\r\nx", nil, ""},
		{"INLET/1 id=d boot=b seq=9 x=1\nx", nil, ""},
		{"INLET/1 id=d boot=b- seq=9\nx", nil, ""},
		{"inlet/1 id=d boot=b seq=9\nx", nil, ""},
		{"INLET/1id=d boot=b seq=9\nx", nil, ""},
		{"\n" + hdr + "\nx", nil, ""},
		{"\r\n", nil, ""},
		{"", nil, ""},
		{"hello", nil, ""},
		{"42 hello\n", nil, ""},
	}
	for _, tt := range tests {
		in := []byte(tt.in)
		h, payload, err := wire.ParseDatagram(in)
		if !bytes.Equal(in, []byte(tt.in)) {
			t.Errorf("ParseDatagram(%q) modified its input", tt.in)
		}
		if tt.want == nil {
			if !errors.Is(err, wire.ErrBadHello) {
				t.Errorf("ParseDatagram(%q) = %+v, %q, %v; want bad-hello", tt.in, h, payload, err)
			}
			continue
		}
		if err != nil || h != *tt.want || string(payload) != tt.payload {
			t.Errorf("ParseDatagram(%q) = %+v, %q, %v; want %+v, %q", tt.in, h, payload, err, *tt.want, tt.payload)
		}
	}
}

// --- the server's answers ---

func TestEncoders(t *testing.T) {
	tests := []struct{ got, want string }{
		{string(wire.AppendOK(nil, 0)), "INLET/1 OK last=0\n"},
		{string(wire.AppendOK(nil, 12)), "INLET/1 OK last=12\n"},
		{string(wire.AppendOK(nil, math.MaxInt64)), "INLET/1 OK last=" + maxSeq + "\n"},
		{string(wire.AppendHelloErr(nil, wire.ErrBadHello.Error())), "INLET/1 ERR bad-hello\n"},
		{string(wire.AppendHelloErr(nil, "unauthorized")), "INLET/1 ERR unauthorized\n"},
		{string(wire.AppendHelloErr(nil, "busy")), "INLET/1 ERR busy\n"},
		{string(wire.AppendAck(nil, 7)), "ACK 7\n"},
		{string(wire.AppendAck(nil, math.MaxInt64)), "ACK " + maxSeq + "\n"},
		{string(wire.AppendErr(nil, 7, "too-long")), "ERR 7 too-long\n"},
		{string(wire.AppendErr(nil, 8, wire.ErrBadSeq.Error())), "ERR 8 bad-seq\n"},
		// They append.
		{string(wire.AppendErr(wire.AppendAck([]byte("x"), 1), 2, "too-long")), "xACK 1\nERR 2 too-long\n"},
		{string(wire.AppendHelloErr(wire.AppendOK(nil, 3), "busy")), "INLET/1 OK last=3\nINLET/1 ERR busy\n"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if wire.ErrBadHello.Error() != "bad-hello" || wire.ErrBadSeq.Error() != "bad-seq" {
		t.Errorf("reasons %q, %q", wire.ErrBadHello, wire.ErrBadSeq)
	}
}

// --- round trip ---

func randString(r *rand.Rand, chars string, lo, hi int) string {
	b := make([]byte, lo+r.IntN(hi-lo+1))
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

func randToken(r *rand.Rand) string {
	b := make([]byte, 1+r.IntN(wire.MaxTokenLen))
	for i := range b {
		b[i] = byte('!' + r.IntN('~'-'!'+1))
	}
	return string(b)
}

func randHello(r *rand.Rand, withSeq bool) (wire.Hello, string) {
	h := wire.Hello{
		Device: randString(r, deviceChars, 1, wire.MaxDeviceLen),
		Boot:   randString(r, bootChars, 1, wire.MaxBootLen),
	}
	fields := []string{"id=" + h.Device, "boot=" + h.Boot}
	if r.IntN(2) == 0 {
		h.Token = randToken(r)
		fields = append(fields, "token="+h.Token)
	}
	if withSeq {
		switch r.IntN(4) {
		case 0:
			h.Seq = 1 + r.Int64N(1000)
		case 1:
			h.Seq = math.MaxInt64 - r.Int64N(1000)
		default:
			h.Seq = 1 + r.Int64N(math.MaxInt64)
		}
		fields = append(fields, "seq="+strconv.FormatInt(h.Seq, 10))
	}
	r.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
	return h, "INLET/1 " + strings.Join(fields, " ")
}

func TestHelloRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		want, line := randHello(r, false)
		h, err := wire.ParseHello([]byte(line))
		if err != nil || h != want {
			t.Fatalf("ParseHello(%q) = %+v, %v; want %+v", line, h, err, want)
		}
		if h, err := wire.ParseHello([]byte(encodeHello(want))); err != nil || h != want {
			t.Fatalf("ParseHello(encodeHello(%+v)) = %+v, %v", want, h, err)
		}
		if got := string(wire.AppendHello(nil, want)); got != encodeHello(want)+"\n" {
			t.Fatalf("AppendHello(%+v) = %q, want %q", want, got, encodeHello(want)+"\n")
		}
		// With a trailing space, it is refused.
		if h, err := wire.ParseHello([]byte(line + " ")); err == nil {
			t.Fatalf("ParseHello(%q) = %+v, want bad-hello", line+" ", h)
		}
		// As a datagram header it lacks seq.
		if h, _, err := wire.ParseDatagram([]byte(line + "\nx")); err == nil {
			t.Fatalf("ParseDatagram(%q) = %+v, want bad-hello", line+"\nx", h)
		}

		want, line = randHello(r, true)
		payload := randString(r, "ab \r\n\x00", 0, 8)
		for _, end := range []string{"", "\n", "\r\n"} {
			if end == "" && strings.HasSuffix(payload, "\n") || end == "\n" && strings.HasSuffix(payload, "\r") {
				continue // the payload's own line end would be taken for the datagram's
			}
			for _, eol := range []string{"\n", "\r\n"} {
				d := line + eol + payload + end
				h, p, err := wire.ParseDatagram([]byte(d))
				if err != nil || h != want || string(p) != payload {
					t.Fatalf("ParseDatagram(%q) = %+v, %q, %v; want %+v, %q", d, h, p, err, want, payload)
				}
			}
		}
		if got := string(wire.AppendDatagram(nil, want, []byte(payload))); got != encodeHello(want)+"\n"+payload {
			t.Fatalf("AppendDatagram(%+v, %q) = %q", want, payload, got)
		}
		// Without its seq it is a valid TCP hello, and with it, not.
		want.Seq = 0
		if h, err := wire.ParseHello([]byte(encodeHello(want))); err != nil || h != want {
			t.Fatalf("ParseHello(encodeHello(%+v)) = %+v, %v", want, h, err)
		}
		if _, err := wire.ParseHello([]byte(line)); err == nil {
			t.Fatalf("ParseHello(%q) accepted a seq", line)
		}
	}
}

// --- fuzzing ---

// FuzzParseHello checks that ParseHello never panics, agrees with the model, and
// that whatever it accepts is valid and survives re-encoding.
func FuzzParseHello(f *testing.F) {
	f.Add([]byte("INLET/1 id=dev1 boot=a1"))
	f.Add([]byte("INLET/1 id=dev1 boot=a1 token=secret"))
	f.Add([]byte("INLET/1 id=d boot=b "))
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := bytes.Clone(line)
		h, err := wire.ParseHello(line)
		if !bytes.Equal(line, orig) {
			t.Fatalf("ParseHello modified its input")
		}
		mh, mok := modelHello(string(line), false)
		if (err == nil) != mok || mok && h != mh {
			t.Fatalf("ParseHello(%q) = %+v, %v; model %+v, %v", line, h, err, mh, mok)
		}
		if err != nil {
			if !errors.Is(err, wire.ErrBadHello) {
				t.Fatalf("ParseHello(%q): error %v", line, err)
			}
			return
		}
		checkHello(t, h, false)
		if !wire.IsHello(line) {
			t.Fatalf("ParseHello accepted %q but IsHello is false", line)
		}
		enc := encodeHello(h)
		if h2, err := wire.ParseHello([]byte(enc)); err != nil || h2 != h {
			t.Fatalf("re-encoded %q: got %+v, %v; want %+v", enc, h2, err, h)
		}
	})
}

// FuzzParseMessage checks that ParseMessage never panics, that what it accepts
// is a valid seq, a space and the rest of the line as payload, and that SeqPrefix
// agrees with it.
func FuzzParseMessage(f *testing.F) {
	f.Add([]byte("1 hello"))
	f.Add([]byte("42 "))
	f.Add([]byte(maxSeq + " x"))
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := bytes.Clone(line)
		seq, payload, err := wire.ParseMessage(line)
		if !bytes.Equal(line, orig) {
			t.Fatalf("ParseMessage modified its input")
		}
		pseq, pok := wire.SeqPrefix(line)
		if pok != (err == nil) || pok && pseq != seq {
			t.Fatalf("line %q: ParseMessage %d, %v; SeqPrefix %d, %v", line, seq, err, pseq, pok)
		}
		s, rest, found := strings.Cut(string(line), " ")
		ms, mok := modelSeq(s)
		if (err == nil) != (found && mok) {
			t.Fatalf("ParseMessage(%q) = %d, %v; model %d, %v", line, seq, err, ms, found && mok)
		}
		if err != nil {
			if !errors.Is(err, wire.ErrBadSeq) {
				t.Fatalf("ParseMessage(%q): error %v", line, err)
			}
			return
		}
		if seq < 1 || seq != ms || string(payload) != rest {
			t.Fatalf("ParseMessage(%q) = %d, %q; want %d, %q", line, seq, payload, ms, rest)
		}
		enc := strconv.FormatInt(seq, 10) + " " + string(payload)
		if seq2, p2, err := wire.ParseMessage([]byte(enc)); err != nil || seq2 != seq || !bytes.Equal(p2, payload) {
			t.Fatalf("re-encoded %q: got %d, %q, %v", enc, seq2, p2, err)
		}
	})
}

// FuzzParseDatagram checks that ParseDatagram never panics, that the header it
// accepts is valid and agrees with the model, that the payload is what follows
// the header less one trailing newline, and that re-encoding parses the same.
func FuzzParseDatagram(f *testing.F) {
	f.Add([]byte("INLET/1 id=dev1 boot=a1 seq=1\nhello"))
	f.Add([]byte("INLET/1 id=dev1 boot=a1 seq=2 token=t\r\nhello\r\n"))
	f.Add([]byte("INLET/1 id=d boot=b seq=3\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		orig := bytes.Clone(p)
		h, payload, err := wire.ParseDatagram(p)
		if !bytes.Equal(p, orig) {
			t.Fatalf("ParseDatagram modified its input")
		}
		head, rest, _ := strings.Cut(string(p), "\n")
		head = strings.TrimSuffix(head, "\r")
		mh, mok := modelHello(head, true)
		if (err == nil) != mok || mok && h != mh {
			t.Fatalf("ParseDatagram(%q) = %+v, %v; model %+v, %v", p, h, err, mh, mok)
		}
		if err != nil {
			if !errors.Is(err, wire.ErrBadHello) {
				t.Fatalf("ParseDatagram(%q): error %v", p, err)
			}
			return
		}
		checkHello(t, h, true)
		want := rest
		if w, ok := strings.CutSuffix(rest, "\r\n"); ok {
			want = w
		} else if w, ok := strings.CutSuffix(rest, "\n"); ok {
			want = w
		}
		if string(payload) != want {
			t.Fatalf("ParseDatagram(%q): payload %q, want %q", p, payload, want)
		}
		// Re-encoded, with a trailing "\r\n" that is removed again.
		enc := encodeHello(h) + "\n" + string(payload) + "\r\n"
		h2, p2, err := wire.ParseDatagram([]byte(enc))
		if err != nil || h2 != h || !bytes.Equal(p2, payload) {
			t.Fatalf("re-encoded %q: got %+v, %q, %v; want %+v, %q", enc, h2, p2, err, h, payload)
		}
		// The header without its seq is a TCP hello.
		h.Seq = 0
		if h3, err := wire.ParseHello([]byte(encodeHello(h))); err != nil || h3 != h {
			t.Fatalf("hello %q: got %+v, %v", encodeHello(h), h3, err)
		}
	})
}

// An acknowledged device may not take a plain device's name (its IP address).
func TestDeviceIsNotAnIPAddress(t *testing.T) {
	for id, ok := range map[string]bool{
		"192.168.1.23": false, "127.0.0.1": false, "::1": false, "fe80::1": false, "::ffff:10.0.0.1": false,
		"sensor-1": true, "1.2.3": true, "greenhouse.3": true, "10.0.0.1.a": true,
	} {
		if got := wire.ValidDevice(id); got != ok {
			t.Errorf("ValidDevice(%q) = %v, want %v", id, got, ok)
		}
		_, err := wire.ParseHello([]byte("INLET/1 id=" + id + " boot=b1"))
		if (err == nil) != ok {
			t.Errorf("hello with id=%s: err %v, want accepted=%v", id, err, ok)
		}
	}
}
