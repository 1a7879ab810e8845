package listen_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/listen"
)

// fakeSink stands in for the commit writer. Its queue can be held full (TrySubmit
// refuses, Submit waits), its store reads can be held (Durable waits), and it
// acknowledges every acknowledged-mode message as soon as it is queued, as if
// each were committed at once.
type fakeSink struct {
	mu       sync.Mutex
	msgs     []inlet.Message // payloads copied
	full     bool
	space    chan struct{} // closed when the queue is no longer full
	closed   bool
	durable  map[string]int64 // device/boot → seq, known without the store
	stored   map[string]int64 // device/boot → seq, known only from the store
	storeReq chan string      // Durable reads the store: "device/boot" sent here, if set
	store    chan struct{}    // Durable waits for this to close, if set
	acks     bool             // acknowledge what is queued
	lateAcks []inlet.Message  // acknowledged messages, for a late second Acked
}

func newFakeSink() *fakeSink {
	return &fakeSink{durable: map[string]int64{}, stored: map[string]int64{}, acks: true, space: make(chan struct{})}
}

// setFull holds the queue full, or lets it take messages again.
func (s *fakeSink) setFull(full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full == full {
		return
	}
	s.full = full
	if !full {
		close(s.space)
		s.space = make(chan struct{})
	}
}

func (s *fakeSink) Submit(ctx context.Context, msgs []inlet.Message) error {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return inlet.ErrClosed
		}
		if !s.full {
			break
		}
		space := s.space
		s.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.queueLocked(msgs)
	return nil
}

func (s *fakeSink) TrySubmit(msgs []inlet.Message) (bool, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false, inlet.ErrClosed
	}
	if s.full {
		s.mu.Unlock()
		return false, nil
	}
	s.queueLocked(msgs)
	return true, nil
}

// queueLocked keeps msgs and unlocks; then acknowledges them.
func (s *fakeSink) queueLocked(msgs []inlet.Message) {
	for _, m := range msgs {
		m.Payload = slices.Clone(m.Payload)
		s.msgs = append(s.msgs, m)
		if m.Ack != nil {
			s.lateAcks = append(s.lateAcks, m)
		}
	}
	acks := s.acks
	s.mu.Unlock()
	if acks {
		for _, m := range msgs {
			if m.Ack != nil {
				m.Ack.Acked(m.Seq)
			}
		}
	}
}

func (s *fakeSink) KnownDurable(device, boot string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.durable[device+"/"+boot]
	return d, ok
}

func (s *fakeSink) Durable(device, boot string) int64 {
	if d, ok := s.KnownDurable(device, boot); ok {
		return d
	}
	s.mu.Lock()
	req, gate := s.storeReq, s.store
	s.mu.Unlock()
	if req != nil {
		req <- device + "/" + boot
	}
	if gate != nil {
		<-gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored[device+"/"+boot]
}

// payloads lists what device queued, in queue order.
func (s *fakeSink) payloads(device string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.msgs {
		if m.Device == device {
			out = append(out, string(m.Payload))
		}
	}
	return out
}

func (s *fakeSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// startTCP serves a TCP listener on a free loopback port over sink; it is
// closed when the test ends.
func startTCP(t testing.TB, sink listen.Sink, cfg listen.Config) (*listen.TCP, *inlet.Stats) {
	t.Helper()
	return startTCPAt(t, "127.0.0.1:0", sink, cfg)
}

// startTCPAt is startTCP on another address.
func startTCPAt(t testing.TB, addr string, sink listen.Sink, cfg listen.Config) (*listen.TCP, *inlet.Stats) {
	t.Helper()
	if cfg.Stats == nil {
		cfg.Stats = new(inlet.Stats)
	}
	ln, err := listen.ListenTCP(addr, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { ln.Serve(); close(served) }()
	t.Cleanup(func() {
		if s, ok := sink.(*fakeSink); ok {
			s.setFull(false) // a test that failed with the queue held must not hang here
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ln.Close(ctx)
		ln.WaitAcks(ctx)
		<-served
	})
	return ln, cfg.Stats
}

// waitFor polls cond until it holds or d passes; no test sleeps blindly.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// dialFrom connects from a given loopback source address, so that each emulated
// device has an IP address of its own.
func dialFrom(t testing.TB, src string, addr net.Addr) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendOnce is the tutorial sketch: connect, print one line, close.
func sendOnce(t testing.TB, src string, addr net.Addr, line string) {
	t.Helper()
	c := dialFrom(t, src, addr)
	if _, err := c.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// ackClient is an acknowledged-mode device on one connection.
type ackClient struct {
	c net.Conn
	r *bufio.Reader
}

func dialAck(t testing.TB, src string, addr net.Addr) *ackClient {
	t.Helper()
	c := dialFrom(t, src, addr)
	return &ackClient{c: c, r: bufio.NewReader(c)}
}

func (a *ackClient) send(t testing.TB, lines ...string) {
	t.Helper()
	if _, err := a.c.Write([]byte(strings.Join(lines, ""))); err != nil {
		t.Fatal(err)
	}
}

// line reads the server's next line, waiting at most d.
func (a *ackClient) line(t testing.TB, d time.Duration) string {
	t.Helper()
	a.c.SetReadDeadline(time.Now().Add(d))
	s, err := a.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read answer: %q, %v", s, err)
	}
	return strings.TrimSuffix(s, "\n")
}

func hello(device, boot string) string { return fmt.Sprintf("INLET/1 id=%s boot=%s\n", device, boot) }
