package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inletdev/inlet/internal/sockopt"
)

// Baseline is the bare receiver that inlet is measured against: a goroutine per
// TCP connection reading into a 64 KiB buffer and counting '\n' bytes, and one
// goroutine reading UDP datagrams and counting them. It stores nothing, frames
// nothing and never writes back.
type Baseline struct {
	tcp net.Listener
	udp *net.UDPConn

	conns     atomic.Int64
	lines     atomic.Int64
	bytes     atomic.Int64
	datagrams atomic.Int64
	drops     atomic.Int64

	mu      sync.Mutex
	open    map[net.Conn]struct{}
	closing bool
	done    chan struct{}
	wg      sync.WaitGroup
}

// Counts is what a Baseline has read so far.
type Counts struct {
	TCPConns       int64 `json:"tcp_conns"`
	TCPLines       int64 `json:"tcp_lines"` // '\n' bytes read
	TCPBytes       int64 `json:"tcp_bytes"`
	UDPDatagrams   int64 `json:"udp_datagrams"`
	UDPKernelDrops int64 `json:"udp_kernel_drops"`
}

// Messages is the count comparable with inlet's stored messages for transport
// "tcp" or "udp".
func (c Counts) Messages(transport string) int64 {
	if transport == "udp" {
		return c.UDPDatagrams
	}
	return c.TCPLines
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// ListenBaseline binds the TCP and UDP addresses (an empty one is not bound) and
// gives the UDP socket a receive buffer of udpBuffer bytes, as inlet serve does.
func ListenBaseline(tcpAddr, udpAddr string, udpBuffer int) (_ *Baseline, err error) {
	b := &Baseline{open: make(map[net.Conn]struct{}), done: make(chan struct{})}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if tcpAddr != "" {
		if b.tcp, err = net.Listen("tcp", tcpAddr); err != nil {
			return nil, fmt.Errorf("baseline: listen tcp %s: %w", tcpAddr, err)
		}
	}
	if udpAddr != "" {
		la, err := net.ResolveUDPAddr("udp", udpAddr)
		if err != nil {
			return nil, fmt.Errorf("baseline: listen udp %s: %w", udpAddr, err)
		}
		if b.udp, err = net.ListenUDP("udp", la); err != nil {
			return nil, fmt.Errorf("baseline: listen udp %s: %w", udpAddr, err)
		}
		if udpBuffer > 0 {
			sockopt.SetRecvBuffer(b.udp, udpBuffer)
		}
		sockopt.EnableDropCount(b.udp) // best effort: without it drops read as 0
	}
	if b.tcp == nil && b.udp == nil {
		return nil, errors.New("baseline: nothing to listen on")
	}
	return b, nil
}

// TCPAddr is the bound TCP address, or "" when TCP is off.
func (b *Baseline) TCPAddr() string {
	if b.tcp == nil {
		return ""
	}
	return b.tcp.Addr().String()
}

// UDPAddr is the bound UDP address, or "" when UDP is off.
func (b *Baseline) UDPAddr() string {
	if b.udp == nil {
		return ""
	}
	return b.udp.LocalAddr().String()
}

// Serve starts the reading goroutines and returns; Close stops them.
func (b *Baseline) Serve() {
	if b.tcp != nil {
		b.wg.Add(1)
		go b.acceptTCP()
	}
	if b.udp != nil {
		b.wg.Add(1)
		go b.readUDP()
	}
}

// Counts returns the counts so far.
func (b *Baseline) Counts() Counts {
	return Counts{
		TCPConns:       b.conns.Load(),
		TCPLines:       b.lines.Load(),
		TCPBytes:       b.bytes.Load(),
		UDPDatagrams:   b.datagrams.Load(),
		UDPKernelDrops: b.drops.Load(),
	}
}

// Handler serves GET /counts as JSON.
func (b *Baseline) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /counts", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(b.Counts())
	})
	return mux
}

// Close stops accepting, closes every connection and waits for the goroutines.
// It is safe to call twice.
func (b *Baseline) Close() error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return nil
	}
	b.closing = true
	close(b.done)
	var errs []error
	if b.tcp != nil {
		errs = append(errs, b.tcp.Close())
	}
	if b.udp != nil {
		errs = append(errs, b.udp.Close())
	}
	for c := range b.open {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("baseline: close: %w", err)
	}
	return nil
}

func (b *Baseline) acceptTCP() {
	defer b.wg.Done()
	var delay time.Duration
	for {
		c, err := b.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, say: back off, 5 ms doubling to 1 s.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t := time.NewTimer(delay)
			select {
			case <-b.done:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		delay = 0
		// Tracked before the first read, so Close can end it.
		b.mu.Lock()
		if b.closing {
			b.mu.Unlock()
			c.Close()
			return
		}
		b.open[c] = struct{}{}
		b.wg.Add(1)
		b.mu.Unlock()
		go b.readTCP(c)
	}
}

func (b *Baseline) readTCP(c net.Conn) {
	defer b.wg.Done()
	defer func() {
		b.mu.Lock()
		delete(b.open, c)
		b.mu.Unlock()
		c.Close()
	}()
	b.conns.Add(1)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := c.Read(buf)
		if n > 0 {
			b.lines.Add(int64(bytes.Count(buf[:n], []byte{'\n'})))
			b.bytes.Add(int64(n))
		}
		if err != nil {
			return
		}
	}
}

func (b *Baseline) readUDP() {
	defer b.wg.Done()
	buf := make([]byte, 64<<10)
	oob := make([]byte, 128)
	for {
		// The same call inlet serve makes: the datagram, its source and the drop count.
		_, oobn, _, _, err := b.udp.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			select {
			case <-b.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		b.datagrams.Add(1)
		if n, ok := sockopt.ParseDropCount(oob[:oobn]); ok {
			b.drops.Store(int64(n))
		}
	}
}
