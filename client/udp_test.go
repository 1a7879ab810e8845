package client_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet/client"
	"github.com/inletdev/inlet/internal/fakeinlet"
)

// lossyProxy relays UDP between clients and a server, dropping a fraction of the
// datagrams in each direction.
type lossyProxy struct {
	front    *net.UDPConn
	server   *net.UDPAddr
	loss     float64
	mu       sync.Mutex
	rng      *rand.Rand
	backs    map[netip.AddrPort]*net.UDPConn
	dropped  int
	wg       sync.WaitGroup
	shutdown chan struct{}
}

func startLossyProxy(t testing.TB, server string, loss float64) *lossyProxy {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{
		front: front, server: net.UDPAddrFromAddrPort(netip.MustParseAddrPort(server)), loss: loss,
		rng:      rand.New(rand.NewPCG(1, 2)),
		backs:    map[netip.AddrPort]*net.UDPConn{},
		shutdown: make(chan struct{}),
	}
	p.wg.Add(1)
	go p.forward()
	t.Cleanup(p.close)
	return p
}

func (p *lossyProxy) addr() string { return p.front.LocalAddr().String() }

// drop decides the fate of one datagram.
func (p *lossyProxy) drop() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rng.Float64() < p.loss {
		p.dropped++
		return true
	}
	return false
}

// forward relays client → server, one back socket per client so that replies
// find their way.
func (p *lossyProxy) forward() {
	defer p.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := p.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		back := p.backs[from]
		if back == nil {
			back, err = net.DialUDP("udp", nil, p.server)
			if err != nil {
				p.mu.Unlock()
				continue
			}
			p.backs[from] = back
			p.wg.Add(1)
			go p.reply(back, from)
		}
		p.mu.Unlock()
		if !p.drop() {
			back.Write(buf[:n])
		}
	}
}

// reply relays server → client.
func (p *lossyProxy) reply(back *net.UDPConn, client netip.AddrPort) {
	defer p.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, err := back.Read(buf)
		if err != nil {
			select {
			case <-p.shutdown:
				return
			default:
				continue // ICMP from a closed port, and the like
			}
		}
		if !p.drop() {
			p.front.WriteToUDPAddrPort(buf[:n], client)
		}
	}
}

func (p *lossyProxy) close() {
	close(p.shutdown)
	p.front.Close()
	p.mu.Lock()
	for _, b := range p.backs {
		b.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Over a path that loses 30% of the datagrams each way, every message arrives:
// the client repeats each until its ACK gets through.
func TestUDPThroughLoss(t *testing.T) {
	srv := startFake(t, fakeinlet.Options{})
	proxy := startLossyProxy(t, srv.UDPAddr(), 0.3)
	s := newSender(t, client.Config{Addr: proxy.addr(), Network: "udp", Window: 64, AckTimeout: 300 * time.Millisecond})
	const total = 200
	want := map[int64]string{}
	for i := 1; i <= total; i++ {
		p := fmt.Sprintf("reading %d\nsecond line", i) // UDP payloads may hold newlines
		want[mustSend(t, s, p)] = p
	}
	mustFlush(t, s)
	checkStored(t, srv, "dev-1", s.Boot(), want)
	st := s.Stats()
	proxy.mu.Lock()
	dropped := proxy.dropped
	proxy.mu.Unlock()
	t.Logf("stats %+v; proxy dropped %d datagrams; server saw %d duplicates", st, dropped, srv.Duplicates())
	if dropped == 0 || st.Retried == 0 || st.Acked != total || st.Pending != 0 {
		t.Errorf("stats %+v with %d datagrams dropped: want resends and everything acknowledged", st, dropped)
	}
}
