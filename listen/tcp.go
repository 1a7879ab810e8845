package listen

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/wire"
)

// readBufSize is the read buffer each active connection borrows from a pool.
const readBufSize = 16 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// TCP is the plain-mode TCP listener (PROTOCOL.md §1).
type TCP struct {
	cfg  Config
	ln   net.Listener
	sink Sink

	// hard ends blocked submits when shutdown runs out of time.
	hard     context.Context
	hardStop context.CancelFunc

	mu      sync.Mutex
	closing atomic.Bool
	conns   map[*tcpConn]struct{}
	perIP   map[netip.Addr]int
	wg      sync.WaitGroup
	refused limiter
	quit    chan struct{} // closed by Close: ends an accept back-off
	done    chan struct{} // closed when the accept loop has returned
}

type tcpConn struct {
	net.Conn
	ip netip.Addr
}

// ListenTCP binds addr ("" is not allowed; the caller skips a disabled listener).
func ListenTCP(addr string, sink Sink, cfg Config) (*TCP, error) {
	cfg.setDefaults()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	t := &TCP{
		cfg:     cfg,
		ln:      ln,
		sink:    sink,
		conns:   make(map[*tcpConn]struct{}),
		perIP:   make(map[netip.Addr]int),
		refused: limiter{every: 10 * time.Second},
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	t.hard, t.hardStop = context.WithCancel(context.Background())
	return t, nil
}

// Addr is the bound address.
func (t *TCP) Addr() net.Addr { return t.ln.Addr() }

// Serve runs the accept loop until Close.
func (t *TCP) Serve() {
	defer close(t.done)
	var backoff time.Duration
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary (EMFILE, ECONNABORTED, ...): back off, 5 ms doubling to 1 s.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t.cfg.Logger.Warn("tcp: accept failed; backing off", "err", err, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-t.quit:
				return
			}
			continue
		}
		backoff = 0
		t.admit(c)
	}
}

// admit registers c and starts its reader, or refuses it when over a limit.
func (t *TCP) admit(c net.Conn) {
	ap := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	ip := ap.Addr().Unmap()
	tc := &tcpConn{Conn: c, ip: ip}
	t.mu.Lock()
	if t.closing.Load() {
		t.mu.Unlock()
		c.Close()
		return
	}
	over := ""
	switch {
	case len(t.conns) >= t.cfg.MaxConns:
		over = "max-conns"
	case t.perIP[ip] >= t.cfg.MaxConnsPerIP:
		over = "max-conns-per-ip"
	}
	if over != "" {
		t.mu.Unlock()
		c.Close()
		t.cfg.Stats.Refused.Add(1)
		if ok, n := t.refused.allow(); ok {
			t.cfg.Logger.Warn("tcp: connection refused", "remote", ap.String(), "limit", over, "suppressed", n)
		}
		return
	}
	t.conns[tc] = struct{}{}
	t.perIP[ip]++
	t.wg.Add(1)
	t.mu.Unlock()
	t.cfg.Stats.ConnsAccepted.Add(1)
	t.cfg.Stats.ConnsOpen.Add(1)
	go t.serveConn(tc, ap)
}

func (t *TCP) forget(tc *tcpConn) {
	t.mu.Lock()
	delete(t.conns, tc)
	if t.perIP[tc.ip]--; t.perIP[tc.ip] <= 0 {
		delete(t.perIP, tc.ip)
	}
	t.mu.Unlock()
	t.cfg.Stats.ConnsOpen.Add(-1)
	t.wg.Done()
}

// serveConn reads one connection until EOF, error, idle timeout or shutdown.
func (t *TCP) serveConn(tc *tcpConn, remote netip.AddrPort) {
	defer t.forget(tc)
	defer tc.Close()
	device := deviceID(remote.Addr())
	fr := wire.Framer{Max: t.cfg.MaxMessage}
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	var msgs []inlet.Message
	var arena []byte // payload bytes of one read's messages, handed to the sink
	var readN int
	emit := func(line []byte) {
		if arena == nil {
			arena = make([]byte, 0, max(readN, len(line)))
		}
		start := len(arena)
		arena = append(arena, line...)
		msgs = append(msgs, inlet.Message{
			Device: device, Transport: inlet.TCP, Remote: remote,
			Payload: arena[start:len(arena):len(arena)],
		})
	}
	submit := func() bool {
		if len(msgs) == 0 {
			return true
		}
		var bytes int64
		for i := range msgs {
			bytes += int64(len(msgs[i].Payload))
		}
		t.cfg.Stats.MessagesTCP.Add(int64(len(msgs)))
		t.cfg.Stats.BytesTCP.Add(bytes)
		err := t.sink.Submit(t.hard, msgs)
		clear(msgs)
		msgs, arena = msgs[:0], nil
		if err != nil {
			t.cfg.Logger.Warn("tcp: messages not queued at shutdown", "remote", remote.String(), "err", err)
			return false
		}
		return true
	}
	var err error
	for {
		t.setDeadline(tc)
		var n int
		n, err = tc.Read(buf)
		if n > 0 {
			readN = n
			if k := fr.Feed(buf[:n], emit); k > 0 {
				t.cfg.Stats.TooLong.Add(int64(k))
			}
			if !submit() {
				return
			}
		}
		if err != nil {
			break
		}
	}
	clean := errors.Is(err, io.EOF)
	truncated, tooLong := fr.End(clean, emit)
	if truncated {
		t.cfg.Stats.Truncated.Add(1)
	}
	if tooLong {
		t.cfg.Stats.TooLong.Add(1)
	}
	submit()
}

// setDeadline gives the next read its deadline: the idle timeout, or the drain
// deadline once shutdown has begun. It checks closing after setting, so a Close
// that ran in between is not overwritten (Close sets closing first).
func (t *TCP) setDeadline(tc *tcpConn) {
	if !t.closing.Load() {
		tc.SetReadDeadline(time.Now().Add(t.cfg.IdleTimeout))
		if !t.closing.Load() {
			return
		}
	}
	tc.SetReadDeadline(time.Now().Add(t.cfg.DrainTimeout))
}

// Close stops accepting, lets every connection read what its client already sent
// (up to DrainTimeout), waits for the readers to queue it, and closes them. If ctx
// ends first, blocked readers give up their messages.
func (t *TCP) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closing.Swap(true) {
		t.mu.Unlock()
		<-t.done
		return nil
	}
	close(t.quit)
	t.ln.Close()
	drain := time.Now().Add(t.cfg.DrainTimeout)
	for c := range t.conns {
		c.SetReadDeadline(drain)
	}
	t.mu.Unlock()
	<-t.done
	waited := make(chan struct{})
	go func() { t.wg.Wait(); close(waited) }()
	select {
	case <-waited:
		t.hardStop()
		return nil
	case <-ctx.Done():
		t.hardStop()
		<-waited
		return ctx.Err()
	}
}
