package arduinotest

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// lossyUDP relays datagrams between devices and the server on loopback and
// drops a fraction of them in each direction.
type lossyUDP struct {
	front  *net.UDPConn
	server netip.AddrPort

	mu        sync.Mutex
	up, down  float64 // fraction dropped toward the server, toward the device
	backs     map[netip.AddrPort]*net.UDPConn
	dropped   [2]int
	delivered [2]int
	wg        sync.WaitGroup
}

func newLossyUDP(t *testing.T, server string, up, down float64) *lossyUDP {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyUDP{front: front, server: netip.MustParseAddrPort(server), up: up, down: down,
		backs: make(map[netip.AddrPort]*net.UDPConn)}
	p.wg.Go(p.relayUp)
	t.Cleanup(func() {
		front.Close()
		p.mu.Lock()
		for _, b := range p.backs {
			b.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *lossyUDP) addr() string { return p.front.LocalAddr().String() }

// pass reports whether a datagram in direction dir (0 up, 1 down) gets through.
func (p *lossyUDP) pass(dir int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	loss := p.up
	if dir == 1 {
		loss = p.down
	}
	if rand.Float64() < loss {
		p.dropped[dir]++
		return false
	}
	p.delivered[dir]++
	return true
}

func (p *lossyUDP) relayUp() {
	buf := make([]byte, 65536)
	for {
		n, from, err := p.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		back := p.backs[from]
		if back == nil {
			back, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				p.mu.Unlock()
				return
			}
			p.backs[from] = back
			p.wg.Go(func() { p.relayDown(back, from) })
		}
		p.mu.Unlock()
		if p.pass(0) {
			back.WriteToUDPAddrPort(buf[:n], p.server)
		}
	}
}

func (p *lossyUDP) relayDown(back *net.UDPConn, device netip.AddrPort) {
	buf := make([]byte, 65536)
	for {
		n, _, err := back.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if p.pass(1) {
			p.front.WriteToUDPAddrPort(buf[:n], device)
		}
	}
}

// 10,000 readings over acknowledged UDP through a path that drops 20% of the
// datagrams each way: every reading is stored exactly once, none missing.
func TestUDPLoss(t *testing.T) {
	t.Parallel()
	const n = 10000
	dir := t.TempDir()
	db := filepath.Join(dir, "inlet.db")
	srv := startServer(t, db)
	proxy := newLossyUDP(t, srv.ready.UDP, 0.2, 0.2)
	dev := startDevice(t, "udp", proxy.addr(), "esp-udp", filepath.Join(dir, "rtc"))
	dev.do("retry 15", 5*time.Second)
	dev.do("backoff 20 300", 5*time.Second)
	start := time.Now()
	if s := dev.do("send 10000 wait 0", 60*time.Second); !s.OK {
		t.Fatalf("send: %+v", s)
	}
	s := dev.do("flush 20000", 30*time.Second)
	if !s.OK || s.Pending != 0 || s.Acked != n || s.Dropped != 0 {
		t.Fatalf("after flush: %+v; want all %d acknowledged", s, n)
	}
	took := time.Since(start)
	srv.stop(t)
	proxy.mu.Lock()
	lost, passed := proxy.dropped, proxy.delivered
	proxy.mu.Unlock()
	if lost[0] == 0 || lost[1] == 0 {
		t.Fatalf("the proxy dropped %v datagrams: the loss was not exercised", lost)
	}
	d := devices(t, db)["esp-udp"]
	if d.Messages != n || d.Missing != 0 || d.Gaps != 0 || len(d.Boots) != 1 || d.Boots[0].Missing != 0 {
		t.Fatalf("inlet devices: %+v; want %d messages, none missing, one boot", d, n)
	}
	checkRows(t, db, "esp-udp", s.Boot, seqs(1, n))
	t.Logf("%d readings stored once in %s; datagrams up %d passed %d dropped, down %d passed %d dropped; %d resends de-duplicated",
		n, took.Round(time.Millisecond), passed[0], lost[0], passed[1], lost[1], d.Duplicates)
}
