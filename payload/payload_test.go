package payload_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/inletdev/inlet/payload"
)

type fieldsCase struct {
	name    string
	in      string
	want    string // derived JSON object, "" when nothing is derived
	counter int64
	isCtr   bool
}

var fieldsCases = []fieldsCase{
	// Nothing to derive.
	{name: "empty", in: ""},
	{name: "whitespace only", in: " \t\r\n "},
	{name: "free text", in: "hello world"},
	{name: "single word", in: "hello"},
	{name: "NUL only", in: "\x00"},
	{name: "number with NUL", in: "41\x00"},
	{name: "NUL before number", in: "\x0041"},
	{name: "invalid UTF-8", in: "\xff\xfe"},
	{name: "two numbers", in: "41 42"},
	{name: "decimal comma", in: "21,5"},
	{name: "JSON array", in: "[1,2]"},
	{name: "JSON string", in: `"41"`},
	{name: "JSON true", in: "true"},
	{name: "JSON null", in: "null"},

	// Counters: lone integers that fit in int64.
	{name: "counter", in: "41", want: `{"value":41}`, counter: 41, isCtr: true},
	{name: "zero", in: "0", want: `{"value":0}`, counter: 0, isCtr: true},
	{name: "leading zeros", in: "007", want: `{"value":7}`, counter: 7, isCtr: true},
	{name: "negative counter", in: "-3", want: `{"value":-3}`, counter: -3, isCtr: true},
	{name: "plus sign", in: "+5", want: `{"value":5}`, counter: 5, isCtr: true},
	{name: "negative zero int", in: "-0", want: `{"value":0}`, counter: 0, isCtr: true},
	{name: "surrounding spaces", in: "  41\t", want: `{"value":41}`, counter: 41, isCtr: true},
	{name: "trailing CR", in: "41\r", want: `{"value":41}`, counter: 41, isCtr: true},
	{name: "CRLF", in: "41\r\n", want: `{"value":41}`, counter: 41, isCtr: true},
	{name: "max int64", in: "9223372036854775807", want: `{"value":9223372036854775807}`, counter: math.MaxInt64, isCtr: true},
	{name: "min int64", in: "-9223372036854775808", want: `{"value":-9223372036854775808}`, counter: math.MinInt64, isCtr: true},

	// Lone numbers that are not counters.
	{name: "int64 overflow", in: "99999999999999999999", want: `{"value":100000000000000000000}`},
	{name: "max int64 plus one", in: "9223372036854775808", want: `{"value":9223372036854776000}`},
	{name: "min int64 minus one", in: "-9223372036854775809", want: `{"value":-9223372036854776000}`},
	{name: "huge integer", in: "1" + strings.Repeat("0", 30), want: `{"value":1e+30}`},
	{name: "float", in: "21.5", want: `{"value":21.5}`},
	{name: "negative float", in: "-21.5", want: `{"value":-21.5}`},
	{name: "exponent", in: "-1e3", want: `{"value":-1000}`},
	{name: "exponent upper", in: "2.5E+2", want: `{"value":250}`},
	{name: "leading dot", in: ".5", want: `{"value":0.5}`},
	{name: "trailing dot", in: "5.", want: `{"value":5}`},
	{name: "plus float", in: "+.5", want: `{"value":0.5}`},
	{name: "one point zero", in: "1.0", want: `{"value":1}`},
	{name: "negative zero float", in: "-0.0", want: `{"value":-0}`},
	{name: "tiny", in: "1e-7", want: `{"value":1e-7}`},
	{name: "underflow", in: "1e-400", want: `{"value":0}`},
	{name: "overflow", in: "1e999"},
	{name: "negative overflow", in: "-1e999"},
	{name: "hex", in: "0x10"},
	{name: "underscore", in: "1_000"},
	{name: "inf", in: "inf"},
	{name: "Infinity", in: "Infinity"},
	{name: "NaN", in: "NaN"},
	{name: "lone sign", in: "-"},
	{name: "lone dot", in: "."},
	{name: "exponent without digits", in: "1e"},
	{name: "exponent without mantissa", in: "e5"},
	{name: "double sign", in: "--1"},

	// key=value pairs.
	{name: "kv comma", in: "temp=21.5,hum=40", want: `{"temp":21.5,"hum":40}`},
	{name: "kv space", in: "temp=21.5 hum=40", want: `{"temp":21.5,"hum":40}`},
	{name: "kv semicolon", in: "temp=21.5;hum=40", want: `{"temp":21.5,"hum":40}`},
	{name: "kv mixed separators", in: " ;temp=21.5 ,; hum=40,\t ;", want: `{"temp":21.5,"hum":40}`},
	{name: "kv single", in: "t=1", want: `{"t":1}`},
	{name: "kv string", in: "room=lab", want: `{"room":"lab"}`},
	{name: "kv string and number", in: "room=lab,t=-3", want: `{"room":"lab","t":-3}`},
	{name: "kv key chars", in: "a_b.c-d:E9=1", want: `{"a_b.c-d:E9":1}`},
	{name: "kv numeric key", in: "1=2", want: `{"1":2}`},
	{name: "kv normalised numbers", in: "a=+5,b=.5,c=5.,d=1e3,e=007", want: `{"a":5,"b":0.5,"c":5,"d":1000,"e":7}`},
	{name: "kv non-finite stays string", in: "a=1e999,b=NaN,c=inf", want: `{"a":"1e999","b":"NaN","c":"inf"}`},
	{name: "kv hex stays string", in: "a=0x10", want: `{"a":"0x10"}`},
	{name: "kv big integer", in: "n=99999999999999999999", want: `{"n":100000000000000000000}`},
	{name: "kv quotes literal", in: `room="lab"`, want: `{"room":"\"lab\""}`},
	{name: "kv quoted with space", in: `room="lab 1"`},
	{name: "kv backslash", in: `p=C:\x`, want: `{"p":"C:\\x"}`},
	{name: "kv unicode value", in: "room=küche", want: `{"room":"küche"}`},
	{name: "kv duplicate first wins", in: "a=1,b=2,a=3", want: `{"a":1,"b":2}`},
	{name: "kv duplicate then invalid", in: "a=1,a=2,x"},
	{name: "kv one bad token", in: "temp=21.5,hum"},
	{name: "kv text around", in: "the temp=21.5"},
	{name: "kv empty value", in: "a=,b=1"},
	{name: "kv empty key", in: "=1"},
	{name: "kv double equals", in: "a==1"},
	{name: "kv equals in value", in: "a=b=c"},
	{name: "kv bad key char", in: "a b=1"},
	{name: "kv unicode key", in: "tëmp=1"},
	{name: "kv NUL in value", in: "a=1\x00"},
	{name: "kv control in value", in: "a=x\x01y"},
	{name: "kv DEL in value", in: "a=x\x7fy"},
	{name: "kv invalid UTF-8", in: "a=\xff"},
	{name: "kv key 64 bytes", in: strings.Repeat("k", 64) + "=1", want: `{"` + strings.Repeat("k", 64) + `":1}`},
	{name: "kv key 65 bytes", in: strings.Repeat("k", 65) + "=1"},
	{name: "kv only separators", in: ",;, ;"},
	{name: "kv braces", in: "{a=1}"},

	// JSON objects.
	{name: "json", in: `{"t":21.5,"room":"lab"}`, want: `{"t":21.5,"room":"lab"}`},
	{name: "json spaces", in: " { \"t\" : 21.5 ,\n\"room\":\t\"lab\" } \r", want: `{"t":21.5,"room":"lab"}`},
	{name: "json empty", in: `{}`},
	{name: "json skipped only", in: `{"a":true,"b":null,"c":[1],"d":{"e":1}}`},
	{name: "json nested skipped", in: `{"a":1,"n":{"x":[1,{"y":"}"}],"z":"]"},"b":"x","arr":[],"o":{},"t":true,"f":false,"z":null,"c":2}`, want: `{"a":1,"b":"x","c":2}`},
	{name: "json numbers normalised", in: `{"a":1e3,"b":-0.5,"c":1E-7,"d":-0,"e":12345678901234567890}`, want: `{"a":1000,"b":-0.5,"c":1e-7,"d":0,"e":12345678901234567000}`},
	{name: "json number overflow skipped", in: `{"a":1e999,"b":2}`, want: `{"b":2}`},
	{name: "json numeric string stays string", in: `{"t":"21.5"}`, want: `{"t":"21.5"}`},
	{name: "json escapes", in: `{"a\"b":"x\\y\/z\n\t\r\b\f"}`, want: `{"a\"b":"x\\y/z\n\t\r\u0008\u000c"}`},
	{name: "json unicode escapes", in: `{"k\u00fcche":"\u00e9\u20ac"}`, want: `{"küche":"é€"}`},
	{name: "json raw unicode", in: `{"küche":"é€😀"}`, want: `{"küche":"é€😀"}`},
	{name: "json surrogate pair", in: `{"e":"\ud83d\ude00"}`, want: `{"e":"😀"}`},
	{name: "json lone high surrogate", in: `{"e":"\ud83dx"}`, want: "{\"e\":\"\uFFFDx\"}"},
	{name: "json lone low surrogate", in: `{"e":"\ude00"}`, want: "{\"e\":\"\uFFFD\"}"},
	{name: "json high surrogate then escape", in: `{"e":"\ud83d\u0041"}`, want: "{\"e\":\"\uFFFDA\"}"},
	{name: "json escaped NUL", in: `{"n":"a\u0000b"}`, want: `{"n":"a\u0000b"}`},
	{name: "json escaped control", in: `{"n":"\u001f\u007f"}`, want: "{\"n\":\"\\u001f\x7f\"}"},
	{name: "json empty key and value", in: `{"":""}`, want: `{"":""}`},
	{name: "json duplicate first wins", in: `{"a":1,"b":2,"a":3}`, want: `{"a":1,"b":2}`},
	{name: "json duplicate escaped", in: `{"a":1,"\u0061":2}`, want: `{"a":1}`},
	{name: "json skipped member does not claim key", in: `{"a":{"x":1},"a":2}`, want: `{"a":2}`},
	{name: "json invalid", in: `{"a":1,}`},
	{name: "json unterminated", in: `{"a":1`},
	{name: "json trailing data", in: `{"a":1} x`},
	{name: "json two objects", in: `{"a":1}{"b":2}`},
	{name: "json single quotes", in: `{'a':1}`},
	{name: "json raw control in string", in: "{\"a\":\"x\x01\"}"},
	{name: "json invalid UTF-8", in: "{\"a\":\"\xff\"}"},
	{name: "json leading zero", in: `{"a":007}`},
	{name: "json NaN", in: `{"a":NaN}`},
	{name: "json NUL after", in: "{\"a\":1}\x00"},
}

func TestAppendFields(t *testing.T) {
	for _, tc := range fieldsCases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			dst := append(make([]byte, 0, 64), prefix...)
			in := []byte(tc.in)
			orig := bytes.Clone(in)
			out, counter, isCtr := payload.AppendFields(dst, in)
			if !bytes.Equal(in, orig) {
				t.Fatalf("payload modified: %q -> %q", orig, in)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("dst prefix lost: %q", out)
			}
			got := string(out[len(prefix):])
			if got != tc.want {
				t.Errorf("AppendFields(%q) fields = %s, want %s", tc.in, got, tc.want)
			}
			if counter != tc.counter || isCtr != tc.isCtr {
				t.Errorf("AppendFields(%q) counter = %d, %v, want %d, %v", tc.in, counter, isCtr, tc.counter, tc.isCtr)
			}
			if got == "" {
				if len(out) != len(dst) {
					t.Errorf("nothing derived but len changed")
				}
				return
			}
			checkObject(t, out[len(prefix):])
		})
	}
}

// checkObject asserts that b is one valid JSON object whose members have distinct
// keys and are all numbers or strings.
func checkObject(t testing.TB, b []byte) {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("invalid JSON: %q", b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not an object: %q: %v", b, err)
	}
	if len(m) == 0 {
		t.Fatalf("empty object emitted: %q", b)
	}
	for k, v := range m {
		switch v.(type) {
		case float64, string:
		default:
			t.Fatalf("member %q is %T, want number or string: %q", k, v, b)
		}
	}
	// Count members with a token decoder to catch duplicate keys, which the
	// map above would silently merge.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n := 0
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("token: %v in %q", err, b)
		}
		n++
	}
	// n counts '{', '}' and two tokens per member.
	if members := (n - 2) / 2; members != len(m) {
		t.Fatalf("duplicate keys in %q: %d members, %d distinct", b, members, len(m))
	}
}

func TestAppendFieldsNilDst(t *testing.T) {
	out, c, ok := payload.AppendFields(nil, []byte("41"))
	if string(out) != `{"value":41}` || c != 41 || !ok {
		t.Fatalf("got %q %d %v", out, c, ok)
	}
	out, _, _ = payload.AppendFields(nil, []byte("hello"))
	if out != nil {
		t.Fatalf("got %q, want nil", out)
	}
}

func TestAppendFieldsManyKeys(t *testing.T) {
	// Enough keys to leave the linear duplicate scan, with duplicates throughout.
	var in, want strings.Builder
	want.WriteByte('{')
	for i := range 300 {
		fmt.Fprintf(&in, "k%d=%d,", i%200, i)
		if i < 200 {
			if i > 0 {
				want.WriteByte(',')
			}
			fmt.Fprintf(&want, `"k%d":%d`, i, i)
		}
	}
	want.WriteByte('}')
	out, _, _ := payload.AppendFields(nil, []byte(in.String()))
	if string(out) != want.String() {
		t.Fatalf("got %s\nwant %s", out, want.String())
	}
	checkObject(t, out)

	// Same through the JSON path.
	var js strings.Builder
	js.WriteByte('{')
	for i := range 300 {
		if i > 0 {
			js.WriteByte(',')
		}
		fmt.Fprintf(&js, `"k%d":%d`, i%200, i)
	}
	js.WriteByte('}')
	out, _, _ = payload.AppendFields(nil, []byte(js.String()))
	if string(out) != want.String() {
		t.Fatalf("json: got %s\nwant %s", out, want.String())
	}
}

func TestAppendFieldsDeepNesting(t *testing.T) {
	deep := `{"a":1,"d":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`
	out, _, _ := payload.AppendFields(nil, []byte(deep))
	if string(out) != `{"a":1}` {
		t.Fatalf("got %s", out)
	}
}

func TestAppendFieldsCounterAllocs(t *testing.T) {
	dst := make([]byte, 0, 64)
	for _, in := range []string{"41", "-9223372036854775808", " 007\r"} {
		p := []byte(in)
		allocs := testing.AllocsPerRun(1000, func() {
			out, _, ok := payload.AppendFields(dst[:0], p)
			if !ok || len(out) == 0 {
				t.Fatal("not a counter")
			}
		})
		if allocs != 0 {
			t.Errorf("AppendFields(%q): %v allocs/op, want 0", in, allocs)
		}
	}
}

func TestAppendFieldsCheapPaths(t *testing.T) {
	// Not a hard requirement of the API, but the common kv, float and JSON
	// payloads should not allocate either when dst has room.
	dst := make([]byte, 0, 256)
	for _, in := range []string{"21.5", "temp=21.5,hum=40,room=lab", `{"t":21.5,"room":"lab"}`} {
		p := []byte(in)
		allocs := testing.AllocsPerRun(1000, func() {
			payload.AppendFields(dst[:0], p)
		})
		if allocs != 0 {
			t.Errorf("AppendFields(%q): %v allocs/op, want 0", in, allocs)
		}
	}
}

func FuzzAppendFields(f *testing.F) {
	for _, tc := range fieldsCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		orig := bytes.Clone(p)
		prefix := []byte("pre")
		dst := append(make([]byte, 0, 8), prefix...)
		out, counter, isCtr := payload.AppendFields(dst, p)
		if !bytes.Equal(p, orig) {
			t.Fatalf("payload modified")
		}
		if len(out) < len(prefix) || !bytes.Equal(out[:len(prefix)], prefix) {
			t.Fatalf("dst prefix lost: %q", out)
		}
		fields := out[len(prefix):]
		if len(fields) > 0 {
			checkObject(t, fields)
			if !utf8.Valid(fields) {
				t.Fatalf("output not UTF-8: %q", fields)
			}
		}

		trimmed := strings.Trim(string(p), " \t\r\n")
		n, err := strconv.ParseInt(trimmed, 10, 64)
		if isCtr != (err == nil) {
			t.Fatalf("%q: isCounter = %v, ParseInt err = %v", p, isCtr, err)
		}
		if isCtr {
			if n != counter {
				t.Fatalf("%q: counter = %d, ParseInt = %d", p, counter, n)
			}
			if want := `{"value":` + strconv.FormatInt(n, 10) + `}`; string(fields) != want {
				t.Fatalf("%q: fields = %s, want %s", p, fields, want)
			}
		} else if counter != 0 {
			t.Fatalf("%q: counter %d reported without isCounter", p, counter)
		}
		if !isCtr && len(fields) > 0 && !strings.ContainsAny(trimmed, "{=") {
			// A lone number: its value must round-trip.
			var m map[string]float64
			if err := json.Unmarshal(fields, &m); err != nil || len(m) != 1 {
				t.Fatalf("%q: lone number gave %s", p, fields)
			}
			want, err := strconv.ParseFloat(trimmed, 64)
			if err != nil || m["value"] != want {
				t.Fatalf("%q: value %v, ParseFloat %v, %v", p, m["value"], want, err)
			}
		}

		// Deterministic, and independent of what dst holds.
		again, c2, ok2 := payload.AppendFields(nil, p)
		if !bytes.Equal(again, fields) || c2 != counter || ok2 != isCtr {
			t.Fatalf("%q: second call gave %q %d %v, first %q %d %v", p, again, c2, ok2, fields, counter, isCtr)
		}
	})
}

func BenchmarkAppendFields(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"counter", "41"},
		{"float", "21.5"},
		{"kv", "temp=21.5,hum=40,room=lab"},
		{"json", `{"t":21.5,"room":"lab"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := []byte(bc.in)
			dst := make([]byte, 0, 256)
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				dst, _, _ = payload.AppendFields(dst[:0], p)
			}
		})
	}
}
