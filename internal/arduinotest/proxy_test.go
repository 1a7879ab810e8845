package arduinotest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// cutProxy relays TCP between the device and the server on loopback. With cut
// set it cuts each connection after a random number of the device's bytes
// (often in the middle of a line). It closes the device's side with a FIN
// after everything the server sent has been written to it, so a device that
// reads every line before it closes gets every ACK the proxy relayed.
//
// It also checks the library's side of the protocol from the bytes it relays:
// after a reconnect the device must not send a seq that the server confirmed
// (an ACK or the hello's last=) on any connection before, and within one
// connection seqs must increase.
type cutProxy struct {
	t  *testing.T
	ln net.Listener

	mu        sync.Mutex
	target    string
	cut       [2]int // cut after a random count of device bytes in [cut[0], cut[1]); 0: never
	cuts      int
	conns     int
	confirmed int64 // highest seq confirmed to the device on a closed connection
	maxAck    int64 // highest seq confirmed to the device on any connection
	problems  []string
	wg        sync.WaitGroup
}

func newCutProxy(t *testing.T, target string, cutMin, cutMax int) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, ln: ln, target: target, cut: [2]int{cutMin, cutMax}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// retarget sends new connections to a restarted server.
func (p *cutProxy) retarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

func (p *cutProxy) stats() (conns, cuts int, acked int64, problems []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns, p.cuts, p.maxAck, append([]string(nil), p.problems...)
}

func (p *cutProxy) problem(format string, args ...any) {
	p.mu.Lock()
	if len(p.problems) < 20 {
		p.problems = append(p.problems, fmt.Sprintf(format, args...))
	}
	p.mu.Unlock()
}

func (p *cutProxy) accept() {
	for {
		dev, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.relay(dev.(*net.TCPConn)) })
	}
}

// relay serves one device connection.
func (p *cutProxy) relay(dev *net.TCPConn) {
	defer dev.Close()
	p.mu.Lock()
	target, cut := p.target, p.cut
	p.conns++
	floor := p.confirmed
	p.mu.Unlock()
	up, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		return // the server is down: the device sees its connection close
	}
	defer up.Close()
	limit := -1
	if cut[1] > 0 {
		limit = cut[0] + rand.IntN(cut[1]-cut[0])
	}

	var (
		mu        sync.Mutex
		delivered int64 // highest seq confirmed on this connection
		okLast    int64 = -1
	)
	downDone := make(chan struct{})
	// server → device: relay, and note what is confirmed.
	go func() {
		defer close(downDone)
		defer dev.SetReadDeadline(time.Now()) // the server went away: end the relay
		r := bufio.NewReader(up)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 && bytes.HasSuffix(line, []byte("\n")) {
				s := strings.TrimSpace(string(line))
				var n int64 = -1
				if v, ok := strings.CutPrefix(s, "INLET/1 OK last="); ok {
					n, _ = strconv.ParseInt(v, 10, 64)
					mu.Lock()
					okLast = n // before the device can see it and answer
					mu.Unlock()
				} else if v, ok := strings.CutPrefix(s, "ACK "); ok {
					n, _ = strconv.ParseInt(v, 10, 64)
				}
				if _, werr := dev.Write(line); werr != nil {
					return
				}
				if n > 0 {
					mu.Lock()
					delivered = max(delivered, n)
					mu.Unlock()
					p.mu.Lock()
					p.maxAck = max(p.maxAck, n)
					p.mu.Unlock()
				}
			}
			if err != nil {
				return
			}
		}
	}()

	// device → server: relay up to the cut, and check the seqs.
	buf := make([]byte, 4096)
	var pending []byte
	var last int64
	sent, hello := 0, false
	cutNow := false
	for {
		n, err := dev.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if limit >= 0 && sent+n >= limit {
				chunk, cutNow = buf[:limit-sent], true
			}
			if len(chunk) > 0 {
				if _, werr := up.Write(chunk); werr != nil {
					break
				}
			}
			sent += len(chunk)
			pending = append(pending, chunk...)
			for {
				i := bytes.IndexByte(pending, '\n')
				if i < 0 {
					break
				}
				line := string(pending[:i])
				pending = pending[i+1:]
				if !hello {
					hello = true
					continue
				}
				seqText, _, _ := strings.Cut(line, " ")
				seq, perr := strconv.ParseInt(seqText, 10, 64)
				if perr != nil {
					p.problem("device sent %q", line)
					continue
				}
				mu.Lock()
				ol := okLast
				mu.Unlock()
				if ol < 0 {
					p.problem("seq %d sent before the hello's answer", seq)
				}
				if seq <= max(floor, ol) {
					p.problem("seq %d resent after the server confirmed up to %d", seq, max(floor, ol))
				}
				if seq <= last {
					p.problem("seq %d after %d on one connection", seq, last)
				}
				last = seq
			}
		}
		if err != nil || cutNow {
			break
		}
	}
	if cutNow {
		p.mu.Lock()
		p.cuts++
		p.mu.Unlock()
	}
	// Reset the server's side first, as a network failure would (with a FIN
	// instead the server stores a cut-off last line as a message: see the
	// report of issue 9); whatever it still sends is lost. Then give the
	// device everything relayed so far, and a FIN.
	up.(*net.TCPConn).SetLinger(0)
	up.Close()
	<-downDone
	mu.Lock()
	d := delivered
	mu.Unlock()
	p.mu.Lock()
	p.confirmed = max(p.confirmed, d)
	p.mu.Unlock()
	dev.CloseWrite()
	dev.SetReadDeadline(time.Now().Add(3 * time.Second))
	io.Copy(io.Discard, dev) // until the device closes its side
}
