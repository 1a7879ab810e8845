package httpapi

import (
	"net/netip"
	"testing"
	"time"
)

func TestFailLimitWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newFailLimit(3)
	l.now = func() time.Time { return now }
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for range 3 {
		if blocked, _ := l.blocked(a); blocked {
			t.Fatal("blocked before its failures were used")
		}
		l.fail(a)
	}
	if blocked, left := l.blocked(a); !blocked || left != time.Minute {
		t.Fatalf("after 3 failures: blocked=%v for %v, want blocked for a minute", blocked, left)
	}
	if blocked, _ := l.blocked(b); blocked {
		t.Fatal("another address is blocked too")
	}
	now = now.Add(time.Minute)
	if blocked, _ := l.blocked(a); blocked {
		t.Fatal("still blocked after the window")
	}
	if unlimited := newFailLimit(-1); func() bool { unlimited.fail(a); b, _ := unlimited.blocked(a); return b }() {
		t.Fatal("a negative limit blocks")
	}
}

func TestFailLimitForgets(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newFailLimit(1)
	l.now = func() time.Time { return now }
	for i := range maxTracked {
		l.fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	now = now.Add(2 * time.Minute)
	l.fail(netip.MustParseAddr("192.0.2.1"))
	if len(l.ips) != 1 {
		t.Fatalf("%d addresses tracked after the window, want only the new one", len(l.ips))
	}
}
