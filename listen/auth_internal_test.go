package listen

import (
	"net/netip"
	"testing"
	"time"
)

// The failure bucket refills at MaxFailedHellos a minute: an address over the
// limit gets one more check after 60/N seconds, and is forgotten once full.
// IPv6 addresses count per /64.
func TestFailureBucket(t *testing.T) {
	a := NewAuth(AuthConfig{Token: "x", MaxFailedHellos: 6})
	ip := netip.MustParseAddr("192.0.2.7")
	t0 := time.Unix(1000, 0)
	for i := range 6 {
		if a.limited(ip, t0) {
			t.Fatalf("limited after %d failures", i)
		}
		a.failed(ip, t0)
	}
	if !a.limited(ip, t0) || !a.limited(ip, t0.Add(9*time.Second)) {
		t.Fatal("not limited after 6 failures")
	}
	if a.limited(netip.MustParseAddr("192.0.2.8"), t0) {
		t.Fatal("another address limited")
	}
	if a.limited(ip, t0.Add(10*time.Second)) { // 6 a minute: one every 10 s
		t.Fatal("still limited 10 s later")
	}
	a.failed(ip, t0.Add(10*time.Second))
	if !a.limited(ip, t0.Add(15*time.Second)) {
		t.Fatal("a failure after the refill did not use it up")
	}
	a.forget(t0.Add(30 * time.Second))
	if len(a.fails) != 1 {
		t.Fatalf("forgot an address still refilling: %d left", len(a.fails))
	}
	a.forget(t0.Add(2 * time.Minute))
	if len(a.fails) != 0 {
		t.Fatalf("%d addresses kept after their buckets filled", len(a.fails))
	}

	v6 := netip.MustParseAddr("2001:db8:1:2::1")
	for range 6 {
		a.failed(v6, t0)
	}
	if !a.limited(netip.MustParseAddr("2001:db8:1:2:ffff::9"), t0) {
		t.Fatal("another address of the same /64 not limited")
	}
	if a.limited(netip.MustParseAddr("2001:db8:1:3::1"), t0) {
		t.Fatal("an address of another /64 limited")
	}
}
