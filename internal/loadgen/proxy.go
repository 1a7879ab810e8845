package loadgen

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// proxy is the loopback TCP balancer inlet bench --nodes puts in front of its
// servers: each connection accepted goes to the next server in turn, and its
// bytes are copied both ways until either side closes. It stands for the TCP
// load balancer (HAProxy, nginx stream) of docs/scale.md, and runs in the
// bench's process.
type proxy struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
}

// startProxy listens on a free loopback port and spreads connections over backends.
func startProxy(backends []string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p := &proxy{ln: ln, backends: backends, conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.accept)
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if !p.track(c) {
			c.Close()
			return
		}
		backend := p.backends[(p.next.Add(1)-1)%uint64(len(p.backends))]
		p.wg.Go(func() { p.serve(c, backend) })
	}
}

// track records c so that close can end it; false once the proxy is closed.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

// serve dials the backend and copies both ways. When one side stops sending,
// the other is told so (a half close), as a TCP balancer does; the connection
// ends when both directions have.
func (p *proxy) serve(c net.Conn, backend string) {
	defer p.untrack(c)
	defer c.Close()
	b, err := net.Dial("tcp", backend)
	if err != nil {
		return // the device sees its connection closed, as behind a balancer whose backend is down
	}
	if !p.track(b) {
		b.Close()
		return
	}
	defer p.untrack(b)
	defer b.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(b, c)
	go pipe(c, b)
	<-done
	<-done
}

// close stops accepting, ends every connection and waits for the copies.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}
