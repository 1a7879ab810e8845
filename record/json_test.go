package record

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/inletdev/inlet"
)

// reflectJSON is the encoding AppendJSON replaced (encoding/json by
// reflection over FromStored's Message), kept as the reference it must equal
// byte for byte.
func reflectJSON(m *inlet.Stored) []byte {
	r := FromStored(m)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		r.Fields = nil
		b.Reset()
		enc.Encode(r)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func checkSame(t *testing.T, m *inlet.Stored) {
	t.Helper()
	want := reflectJSON(m)
	got := AppendJSON([]byte("prefix"), m)
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("record of %+v:\n got %q\nwant %q", m, got, want)
	}
	if !json.Valid(want) {
		t.Fatalf("invalid JSON %q", want)
	}
}

// hostile holds texts that exercise every escape and the invalid-UTF-8 rules.
var hostile = []string{
	"", "7", "temp=21.5 hum=40", `"quoted" \back\slash/`, "<script>&amp;</script>",
	"\x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f", "caf\u00e9 \u65e5\u672c \U0001F600",
	"\u2028line\u2029para", "\xff\xfe", "a\xc3", "\xe2\x80", "\xed\xa0\x80surrogate", "\xf4\x90\x80\x80",
	"\xc0\xaf overlong", strings.Repeat("x\"", 300), "\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xaa",
}

var hostileFields = []string{
	"", `{"value":7}`, `{"value":`, `not json`, ` { "a" : [ 1 , 2.5e300 , -0 , true , null ] } `,
	`{"big":123456789012345678901234567890}`, `{"s":"\u2028 < & >"}`, "{\"raw\":\"\u2028\xff\"}",
	`{"a":1,}`, `[1,]`, `{"a"}`, `{"a":}`, `"\u12"`, `"\u12g4"`, `"\x"`, `-`, `1.`, `1e`, `01`, `-0.0e+5`, `1E-7`, `[{}]`, `{"a":[]}`,
	`[}`, `{]`, `tru`, `nulll`, `falsey`, strings.Repeat("[", 64) + strings.Repeat("]", 64), strings.Repeat("[", 65) + strings.Repeat("]", 65),
	strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70), strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	`[]`, `"text"`, `1e999`, `{"a":1}{"b":2}`, "{\"ctl\":\"\x01\"}", "\t\n{}\r\n", `{"a":"\ud800"}`, `nul`,
}

var remotes = []netip.AddrPort{
	{}, netip.MustParseAddrPort("192.168.1.37:50412"), netip.MustParseAddrPort("[::1]:0"), netip.MustParseAddrPort("[::ffff:10.0.0.1]:7"),
	netip.AddrPortFrom(netip.MustParseAddr("::ffff:10.0.0.1").WithZone("z"), 8),
	netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone("eth\"0\\\x01\xff\u2028"), 65535),
	netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone(strings.Repeat("z", 100)), 1),
}

func TestAppendJSONMatchesReflection(t *testing.T) {
	nums := []int64{0, 1, -1, 42, math.MaxInt64, math.MinInt64, 1e18, -6795364578871345152}
	for i, p := range hostile {
		for j, f := range hostileFields {
			m := &inlet.Stored{ID: nums[(i+j)%len(nums)], Message: inlet.Message{
				ReceivedAt: nums[(i*3+j)%len(nums)], Device: hostile[(i+j)%len(hostile)],
				Transport: inlet.Transport(j % 4), Remote: remotes[(i+j)%len(remotes)],
				Boot: hostile[j%len(hostile)], Seq: nums[j%len(nums)], Payload: []byte(p), Fields: []byte(f),
			}}
			checkSame(t, m)
		}
	}
	// Random records: random bytes, random runes, random numbers.
	rng := rand.New(rand.NewPCG(1, 2))
	text := func() string {
		b := make([]byte, rng.IntN(40))
		for k := range b {
			switch rng.IntN(4) {
			case 0:
				b[k] = byte(rng.IntN(256))
			case 1:
				b[k] = byte(rng.IntN(0x20))
			default:
				b[k] = byte(0x20 + rng.IntN(0x60))
			}
		}
		if rng.IntN(3) == 0 {
			b = append(b, string(rune(rng.IntN(0x110000)))...)
		}
		return string(b)
	}
	for range 20000 {
		f := hostileFields[rng.IntN(len(hostileFields))]
		if rng.IntN(4) == 0 {
			f = text()
		}
		m := &inlet.Stored{ID: int64(rng.Uint64()), Message: inlet.Message{
			ReceivedAt: int64(rng.Uint64()), Device: text(), Transport: inlet.Transport(rng.IntN(4)),
			Remote: remotes[rng.IntN(len(remotes))], Boot: text(), Seq: int64(rng.Uint64()) >> rng.IntN(64),
			Payload: []byte(text()), Fields: []byte(f),
		}}
		checkSame(t, m)
	}
}

func FuzzAppendJSON(f *testing.F) {
	for i, p := range hostile {
		f.Add(int64(i), int64(i)*1e17, hostile[(i+1)%len(hostile)], uint8(i), hostile[(i+2)%len(hostile)], int64(i-3), []byte(p), []byte(hostileFields[i%len(hostileFields)]))
	}
	f.Fuzz(func(t *testing.T, id, at int64, device string, transport uint8, boot string, seq int64, payload, fields []byte) {
		checkSame(t, &inlet.Stored{ID: id, Message: inlet.Message{
			ReceivedAt: at, Device: device, Transport: inlet.Transport(transport),
			Remote: remotes[int(transport)%len(remotes)], Boot: boot, Seq: seq, Payload: payload, Fields: fields,
		}})
	})
}

func TestAppendTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, ns := range []int64{0, -1, 1, math.MinInt64, math.MaxInt64, 951782400e9, 4107542399999999999} {
		if got, want := string(appendTime(nil, ns)), Time(ns); got != want {
			t.Errorf("appendTime(%d) = %s, want %s", ns, got, want)
		}
	}
	for range 100000 {
		ns := int64(rng.Uint64())
		if got, want := string(appendTime(nil, ns)), Time(ns); got != want {
			t.Fatalf("appendTime(%d) = %s, want %s", ns, got, want)
		}
	}
}

// compactJSON must only say true of text json.Compact takes and leaves as it is.
func checkCompact(t *testing.T, in []byte) {
	t.Helper()
	var b bytes.Buffer
	err := json.Compact(&b, in)
	if compactJSON(in) && (err != nil || !bytes.Equal(b.Bytes(), in)) {
		t.Fatalf("compactJSON(%q) = true; json.Compact: %q, %v", in, b.Bytes(), err)
	}
}

func TestCompactJSON(t *testing.T) {
	for _, f := range hostileFields {
		checkCompact(t, []byte(f))
	}
	// The fast path must take what inlet writes.
	for _, f := range []string{`{"value":7}`, `{"temp":21.5,"hum":40}`, `{"a":[1,-2.5e-3,true,false,null,"x\"\u00e9"],"b":{}}`, `[]`, `0`} {
		if !compactJSON([]byte(f)) {
			t.Errorf("compactJSON(%s) = false", f)
		}
	}
}

func FuzzCompactJSON(f *testing.F) {
	for _, s := range hostileFields {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkCompact(t, in) })
}

func TestAppendJSONAllocates(t *testing.T) {
	m := benchRecord()
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = AppendJSON(buf[:0], m) }); n != 0 {
		t.Errorf("AppendJSON allocates %v times per record, want 0", n)
	}
}

// benchRecord is a typical plain message (the shape BenchmarkIngest stores) with fields.
func benchRecord() *inlet.Stored {
	return &inlet.Stored{ID: 123456, Message: inlet.Message{
		ReceivedAt: 1796032807123456789, Device: "10.0.3.47", Transport: inlet.TCP,
		Remote: netip.MustParseAddrPort("192.168.1.7:40000"), Payload: []byte("temp=21.5 hum=40"),
		Fields: []byte(`{"temp":21.5,"hum":40}`),
	}}
}

// BenchmarkAppendJSON compares the hand-written encoder with the reflection
// one it replaced (BENCHMARKS.md, "NATS").
func BenchmarkAppendJSON(b *testing.B) {
	m := benchRecord()
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = AppendJSON(buf[:0], m)
		}
	})
	b.Run("reflect", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = append(buf[:0], reflectJSON(m)...)
		}
	})
}
