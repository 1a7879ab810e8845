package publish

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/inletdev/inlet"
)

func TestToken(t *testing.T) {
	for _, c := range []struct{ device, token string }{
		{"esp-kitchen_1", "esp-kitchen_1"},
		{"192.168.1.5", "192~2E168~2E1~2E5"},
		{"2001:db8::1", "2001:db8::1"},
		{"fe80::1%eth0", "fe80::1~25eth0"},
		{"a*b>c", "a~2Ab~3Ec"},
		{"two words\ttab", "two~20words~09tab"},
		{"~", "~7E"},
		{"~7E", "~7E7E"},
		{"\x00\xff", "~00~FF"},
		{"é", "~C3~A9"},
		{"", "~"},
	} {
		if got := Token(c.device); got != c.token {
			t.Errorf("Token(%q) = %q, want %q", c.device, got, c.token)
		}
		if d, ok := DeviceOf(c.token); !ok || d != c.device {
			t.Errorf("DeviceOf(%q) = %q, %v; want %q", c.token, d, ok, c.device)
		}
	}
	long := strings.Repeat(".", 100) // 300 bytes escaped
	tok := Token(long)
	if len(tok) != 34 || !strings.HasPrefix(tok, "~H") || Token(long+".") == tok {
		t.Errorf("long name: %q", tok)
	}
	if _, ok := DeviceOf(tok); ok {
		t.Errorf("a hashed token was reversed")
	}
	for _, bad := range []string{"", "~41", "~2e", "a.b", "~", "~4", "a~", "~G0", "a b", "~H00"} {
		if d, ok := DeviceOf(bad); ok && Token(d) != bad {
			t.Errorf("DeviceOf(%q) = %q, whose token is %q", bad, d, Token(d))
		}
	}
	for _, bad := range []string{"~41", "~2e", "a.b", "~4", "a~", "a b"} {
		if _, ok := DeviceOf(bad); ok {
			t.Errorf("DeviceOf(%q) accepted text Token never returns", bad)
		}
	}
}

// validToken checks what NATS needs of one subject token, and what we promise
// beyond it: printable ASCII of a small set, bounded length.
func validToken(t *testing.T, device, tok string) {
	t.Helper()
	if tok == "" || len(tok) > MaxToken {
		t.Fatalf("Token(%q) = %q: empty or longer than %d", device, tok, MaxToken)
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; !tokenSafe(c) && c != '~' {
			t.Fatalf("Token(%q) = %q: byte %q", device, tok, c)
		}
	}
}

func FuzzToken(f *testing.F) {
	for _, s := range []string{"", "192.168.1.5", "::1", "esp-1", "~", "~2E", "a.b", ".", "*", ">", " ", "\x00", "é",
		strings.Repeat("x", MaxToken), strings.Repeat("x", MaxToken+1), strings.Repeat(".", MaxToken/3+1)} {
		f.Add(s, s+".")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, tb := Token(a), Token(b)
		validToken(t, a, ta)
		validToken(t, b, tb)
		if a != b && ta == tb {
			t.Fatalf("%q and %q share token %q", a, b, ta)
		}
		if a == b && ta != tb {
			t.Fatalf("Token is not a function: %q", a)
		}
		if d, ok := DeviceOf(ta); ok {
			if d != a {
				t.Fatalf("DeviceOf(Token(%q)) = %q", a, d)
			}
		} else if !strings.HasPrefix(ta, "~H") {
			t.Fatalf("DeviceOf(%q) failed for an escaped token of %q", ta, a)
		}
		// Anything DeviceOf accepts is the one token of its name.
		if d, ok := DeviceOf(a); ok && Token(d) != a {
			t.Fatalf("DeviceOf(%q) = %q, whose token is %q", a, d, Token(d))
		}
		if !utf8.ValidString(ta) {
			t.Fatalf("token %q is not UTF-8", ta)
		}
	})
}

func TestMsgID(t *testing.T) {
	acked := &inlet.Stored{ID: 7, Message: inlet.Message{Device: "esp.kitchen", Boot: "b1", Seq: 42, ReceivedAt: 1}}
	if got := MsgID(acked); got != "a/esp~2Ekitchen/b1/42" {
		t.Errorf("acked: %q", got)
	}
	same := *acked
	same.ID, same.ReceivedAt = 99, 2 // the same reading, stored elsewhere
	if MsgID(&same) != MsgID(acked) {
		t.Error("an acknowledged message's id depends on its row")
	}
	plain := &inlet.Stored{ID: 7, Message: inlet.Message{Device: "192.168.1.5", ReceivedAt: 1700000000123456789}}
	if got := MsgID(plain); got != "p/192~2E168~2E1~2E5/7/1700000000123456789" {
		t.Errorf("plain: %q", got)
	}
	// A numeric boot cannot make an acknowledged id look like a plain one.
	a := &inlet.Stored{Message: inlet.Message{Device: "d", Boot: "7", Seq: 1700000000123456789}}
	p := &inlet.Stored{ID: 7, Message: inlet.Message{Device: "d", ReceivedAt: 1700000000123456789}}
	if MsgID(a) == MsgID(p) {
		t.Error("acknowledged and plain ids collide")
	}
	// Another row, or the same row id at another time, is another message.
	p2 := *p
	p2.ReceivedAt++
	if MsgID(&p2) == MsgID(p) {
		t.Error("plain ids ignore the receive time")
	}
}

func FuzzMsgID(f *testing.F) {
	f.Add("d", "b", int64(1), int64(1), int64(1), "d", "b", int64(1), int64(1), int64(2))
	f.Add("a/b", "c", int64(1), int64(0), int64(0), "a", "b/c", int64(1), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, d1, b1 string, s1, id1, at1 int64, d2, b2 string, s2, id2, at2 int64) {
		m1 := &inlet.Stored{ID: id1, Message: inlet.Message{Device: d1, Boot: b1, Seq: s1, ReceivedAt: at1}}
		m2 := &inlet.Stored{ID: id2, Message: inlet.Message{Device: d2, Boot: b2, Seq: s2, ReceivedAt: at2}}
		// Two messages are the same when their identifying fields are.
		same := d1 == d2 && (s1 != 0) == (s2 != 0) &&
			(s1 != 0 && b1 == b2 && s1 == s2 || s1 == 0 && id1 == id2 && at1 == at2)
		if (MsgID(m1) == MsgID(m2)) != same {
			t.Fatalf("ids %q and %q; same message: %v", MsgID(m1), MsgID(m2), same)
		}
		if strings.ContainsAny(MsgID(m1), "\r\n") {
			t.Fatalf("id %q breaks a header", MsgID(m1))
		}
	})
}
