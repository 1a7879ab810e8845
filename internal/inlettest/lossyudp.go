package inlettest

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
)

// LossyUDP relays datagrams between clients and a server on loopback and drops
// a fraction of them in each direction: a lossy WiFi path for acknowledged UDP.
type LossyUDP struct {
	front  *net.UDPConn
	server netip.AddrPort

	mu        sync.Mutex
	up, down  float64 // fraction dropped toward the server, toward the client
	backs     map[netip.AddrPort]*net.UDPConn
	dropped   [2]int
	delivered [2]int
	wg        sync.WaitGroup
}

// NewLossyUDP relays to server, dropping up of the datagrams toward it and down
// of those back; it stops when the test ends.
func NewLossyUDP(t testing.TB, server string, up, down float64) *LossyUDP {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &LossyUDP{front: front, server: netip.MustParseAddrPort(server), up: up, down: down,
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

// Addr is where clients send.
func (p *LossyUDP) Addr() string { return p.front.LocalAddr().String() }

// Counts returns the datagrams dropped and delivered so far, each by direction
// (0 toward the server, 1 toward the client).
func (p *LossyUDP) Counts() (dropped, delivered [2]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped, p.delivered
}

// pass reports whether a datagram in direction dir gets through.
func (p *LossyUDP) pass(dir int) bool {
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

func (p *LossyUDP) relayUp() {
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

func (p *LossyUDP) relayDown(back *net.UDPConn, client netip.AddrPort) {
	buf := make([]byte, 65536)
	for {
		n, _, err := back.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if p.pass(1) {
			p.front.WriteToUDPAddrPort(buf[:n], client)
		}
	}
}
