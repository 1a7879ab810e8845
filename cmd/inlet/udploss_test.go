package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/client"
)

// lossyProxy relays UDP between clients and a server on loopback, dropping a
// fraction of the datagrams in each direction.
type lossyProxy struct {
	front  *net.UDPConn // clients send here
	server netip.AddrPort
	drop   float64
	mu     sync.Mutex
	backs  map[netip.AddrPort]*net.UDPConn // one upstream socket per client
	wg     sync.WaitGroup
}

func newLossyProxy(t *testing.T, server string, drop float64) *lossyProxy {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{front: front, server: netip.MustParseAddrPort(server), drop: drop, backs: make(map[netip.AddrPort]*net.UDPConn)}
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

func (p *lossyProxy) relayUp() {
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
		if rand.Float64() >= p.drop {
			back.WriteToUDPAddrPort(buf[:n], p.server)
		}
	}
}

func (p *lossyProxy) relayDown(back *net.UDPConn, client netip.AddrPort) {
	buf := make([]byte, 65536)
	for {
		n, _, err := back.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if rand.Float64() >= p.drop {
			p.front.WriteToUDPAddrPort(buf[:n], client)
		}
	}
}

// Acknowledged UDP through a path that loses 30% of datagrams each way: the
// client repeats until acknowledged, the server de-duplicates, and every
// reading is stored exactly once.
func TestAckedUDPLossyPath(t *testing.T) {
	cfg := testConfig(t)
	cfg.TCP = ""
	m := MustRun(t, cfg)
	proxy := newLossyProxy(t, m.udpAddr(), 0.3)
	const devicesN, per = 5, 120
	var wg sync.WaitGroup
	errs := make(chan error, devicesN)
	for d := range devicesN {
		wg.Go(func() {
			c, err := client.New(client.Config{Addr: proxy.front.LocalAddr().String(), Network: "udp",
				Device: fmt.Sprintf("lossy-%d", d), Window: 16, AckTimeout: time.Second})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for k := range per {
				if _, err := c.Send(fmt.Appendf(nil, "k=%d", k)); err != nil {
					errs <- err
					return
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := c.Flush(ctx); err != nil {
				errs <- fmt.Errorf("device %d: %w (%+v)", d, err, c.Stats())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	MustClose(t, m)
	count := make(map[string]int)
	for _, msg := range messages(t, cfg.DB, inlet.Query{}) {
		count[msg.Device+"/"+string(msg.Payload)]++
	}
	for d := range devicesN {
		for k := range per {
			if n := count[fmt.Sprintf("lossy-%d/k=%d", d, k)]; n != 1 {
				t.Fatalf("lossy-%d k=%d stored %d times", d, k, n)
			}
		}
	}
	t.Logf("%d readings through a 30%%-loss path, each stored once; %d duplicates absorbed", devicesN*per, m.Stats.Duplicates.Load())
}
