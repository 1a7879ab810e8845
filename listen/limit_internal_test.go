package listen

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// A token bucket per key: the burst at once, then the rate; a key's bucket does
// not touch another's.
func TestRates(t *testing.T) {
	r := newRates[string](10, 3, 100)
	var t0 int64 = 1e18
	for i := range 3 {
		if !r.allow("a", t0) {
			t.Fatalf("burst: message %d refused", i+1)
		}
	}
	if r.allow("a", t0) {
		t.Fatal("over the burst allowed")
	}
	if !r.allow("b", t0) {
		t.Fatal("another key limited")
	}
	if r.ready("a", t0+int64(50*time.Millisecond)) {
		t.Fatal("half a token counted as one")
	}
	if !r.allow("a", t0+int64(100*time.Millisecond)) || r.allow("a", t0+int64(100*time.Millisecond)) {
		t.Fatal("want exactly one token after 100 ms at 10/s")
	}
	if newRates[string](0, 5, 100) != nil {
		t.Fatal("rate 0 is no limit")
	}
}

// The table stays bounded under a flood from many addresses: refilled
// buckets are dropped to make room, and when none has refilled the strangers
// share one bucket (limited together, not let through, not stored).
func TestRatesBounded(t *testing.T) {
	const max = 100
	r := newRates[netip.Addr](1, 2, max) // refills in 2 s
	var now int64 = 1e18
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	allowed := 0
	for i := range 10000 {
		if r.allow(addr(i), now) {
			allowed++
		}
		if r.len() > max {
			t.Fatalf("table holds %d keys, max %d", r.len(), max)
		}
	}
	// 100 keys with their own bucket, then the overflow's burst of 2.
	if allowed != max+2 {
		t.Errorf("allowed %d of 10,000 new addresses at once, want %d", allowed, max+2)
	}
	// A known key keeps its own bucket meanwhile.
	if !r.allow(addr(0), now) || r.allow(addr(0), now) {
		t.Error("a key in the table lost its bucket")
	}
	// Once the buckets have refilled they are dropped, and new keys get theirs.
	now += int64(3 * time.Second)
	if !r.allow(addr(50000), now) || !r.allow(addr(50001), now) || !r.allow(addr(50002), now) {
		t.Error("new keys refused after the table's buckets refilled")
	}
	if n := r.len(); n != 3 {
		t.Errorf("after the sweep the table holds %d keys, want 3", n)
	}
}

// IPv6 addresses are limited per /64; IPv4 per address.
func TestRateKey(t *testing.T) {
	a, b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	if rateKey(a) != rateKey(b) {
		t.Error("two addresses of one /64 have different keys")
	}
	if rateKey(a) == rateKey(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("two /64s share a key")
	}
	if k := rateKey(netip.MustParseAddr("192.0.2.7")); k.String() != "192.0.2.7" {
		t.Errorf("IPv4 key %s", k)
	}
}

// The cost the accept loop pays per connection for --max-conn-rate: one
// address, and 10,000 addresses in turn (a table near its working size).
func BenchmarkRatesAllow(b *testing.B) {
	for _, keys := range []int{1, 10000} {
		b.Run(fmt.Sprintf("addresses=%d", keys), func(b *testing.B) {
			r := newRates[netip.Addr](1e9, 1e9, maxRateKeys) // never refuses: the cost of the check itself
			addrs := make([]netip.Addr, keys)
			for i := range addrs {
				addrs[i] = rateKey(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
			}
			t0 := now() // admit reads the clock anyway
			b.ResetTimer()
			for i := range b.N {
				r.allow(addrs[i%keys], t0+int64(i))
			}
		})
	}
}

// The eviction scan at --max-conns: one newcomer walks every open connection.
func BenchmarkVictim(b *testing.B) {
	t := &TCP{conns: make(map[*tcpConn]struct{})}
	base := now() - int64(time.Hour)
	for i := range 10000 {
		c := &tcpConn{ip: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), accepted: base + int64(i)}
		if i%2 == 0 {
			c.lineAt.Store(base + int64(i))
		}
		t.conns[c] = struct{}{}
	}
	ip := netip.AddrFrom4([4]byte{10, 0, 0, 7})
	b.ResetTimer()
	for range b.N {
		if t.victimLocked(ip, false, now()) == nil {
			b.Fatal("no victim")
		}
	}
}

// The per-address lists stay consistent with the counts through links and
// unlinks at the head, the middle and the tail.
func TestPerIPLists(t *testing.T) {
	tc := &TCP{perIP: make(map[netip.Addr]ipConns)}
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	var cs []*tcpConn
	for i := range 6 {
		c := &tcpConn{ip: a, accepted: int64(i)}
		if i%3 == 2 {
			c.ip = b
		}
		tc.linkLocked(c)
		cs = append(cs, c)
	}
	list := func(ip netip.Addr) (ids []int64) {
		for c := tc.perIP[ip].head; c != nil; c = c.next {
			ids = append(ids, c.accepted)
		}
		return ids
	}
	check := func(ip netip.Addr, want ...int64) {
		t.Helper()
		got := list(ip)
		if fmt.Sprint(got) != fmt.Sprint(want) || tc.perIP[ip].n != len(want) {
			t.Fatalf("%s: list %v (n=%d), want %v", ip, got, tc.perIP[ip].n, want)
		}
	}
	check(a, 4, 3, 1, 0)
	check(b, 5, 2)
	tc.unlinkLocked(cs[3]) // middle
	check(a, 4, 1, 0)
	tc.unlinkLocked(cs[4]) // head
	check(a, 1, 0)
	tc.unlinkLocked(cs[0]) // tail
	check(a, 1)
	tc.unlinkLocked(cs[1])
	if _, ok := tc.perIP[a]; ok {
		t.Fatal("an address without connections keeps its entry")
	}
	check(b, 5, 2)
}
