// Package fakeinlet is a test double of the server side of inlet's acknowledged
// mode (INLET/1, docs/protocol.md) over TCP and UDP on loopback. It stores messages
// in memory, de-duplicated by (device, boot, seq) as the real server does, and
// lets a test misbehave on purpose: refuse hellos, reject messages, lose acks,
// drop connections. It exists so that the device client can be tested without
// the real server; it must not be used to test the server.
package fakeinlet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/inletdev/inlet/wire"
)

// MaxMessage is the longest "<seq> <payload>" line accepted, as the server's
// default --max-message.
const MaxMessage = 4096

// Msg is one message as received.
type Msg struct {
	Device, Boot string
	Seq          int64
	Payload      []byte
	Network      string // "tcp" or "udp"
	Remote       netip.AddrPort
	Conn         int // TCP connection number, from 1; 0 for UDP
}

// Key identifies a message for de-duplication.
type Key struct {
	Device, Boot string
	Seq          int64
}

// Action is what the server does with a received message.
type Action int

const (
	Store      Action = iota // store it (once) and acknowledge it
	Reject                   // answer ERR <seq> <reason> (TCP); store nothing
	Ignore                   // store nothing, answer nothing: the message is lost
	StoreNoAck               // store it but send no ACK for it (a lost ACK); later cumulative ACKs still cover it over TCP
	Disconnect               // close the connection before storing it (TCP); Ignore over UDP
)

// Options make the server misbehave. The zero value is a well-behaved server.
type Options struct {
	// Token, if set, is required in every hello.
	Token string
	// Hello, if set, may refuse the n-th hello (from 1): a non-empty result is
	// sent as "INLET/1 ERR <result>" and the connection closed.
	Hello func(n int, device, boot string) string
	// OnMessage, if set, decides what to do with each message received,
	// duplicates included; reason is used with Reject. nil: Store.
	OnMessage func(m Msg) (a Action, reason string)
	// AckWhen, if set, decides after each stored TCP message whether to send the
	// cumulative ACK now; unacked counts this connection's messages not yet
	// acknowledged, m included, and more says whether more input is already
	// buffered. nil: when no more input is buffered.
	AckWhen func(m Msg, unacked int, more bool) bool
	// Last, if set, replaces the last= of a hello answer, given the highest seq
	// stored for the device and boot.
	Last func(device, boot string, highest int64) int64
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	ln   net.Listener
	udp  *net.UDPConn
	wg   sync.WaitGroup

	mu         sync.Mutex
	conns      map[net.Conn]struct{}
	nconn      int
	hellos     int
	stored     []Msg
	keys       map[Key]bool
	highest    map[[2]string]int64
	received   []Msg
	maxUnacked int
	closed     bool
	changed    chan struct{}
}

// Start listens on TCP and UDP on 127.0.0.1, on free ports.
func Start(opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakeinlet: %w", err)
	}
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("fakeinlet: %w", err)
	}
	s := &Server{
		opts: opts, ln: ln, udp: uc,
		conns:   map[net.Conn]struct{}{},
		keys:    map[Key]bool{},
		highest: map[[2]string]int64{},
		changed: make(chan struct{}),
	}
	s.wg.Add(2)
	go s.accept()
	go s.serveUDP()
	return s, nil
}

// TCPAddr is the TCP address to send to.
func (s *Server) TCPAddr() string { return s.ln.Addr().String() }

// UDPAddr is the UDP address to send to.
func (s *Server) UDPAddr() string { return s.udp.LocalAddr().String() }

// Close stops the server and waits for its goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.udp.Close()
	s.wg.Wait()
}

// DropConnections closes every open TCP connection, as a server restart would.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Preload marks messages as already stored, as if an earlier connection had
// delivered them.
func (s *Server) Preload(device, boot string, seqs ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seq := range seqs {
		s.storeLocked(Msg{Device: device, Boot: boot, Seq: seq, Network: "preload"})
	}
}

// Stored returns the distinct messages stored, in arrival order.
func (s *Server) Stored() []Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Msg(nil), s.stored...)
}

// Received returns every message received, duplicates included.
func (s *Server) Received() []Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Msg(nil), s.received...)
}

// Duplicates counts messages received again after being stored.
func (s *Server) Duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	seen := map[Key]bool{}
	for _, m := range s.received {
		k := Key{m.Device, m.Boot, m.Seq}
		if seen[k] {
			n++
		}
		seen[k] = true
	}
	return n
}

// Hellos counts the hellos received.
func (s *Server) Hellos() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hellos
}

// Conns counts the TCP connections accepted.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nconn
}

// MaxUnacked is the most stored messages ever waiting for an ACK on one TCP
// connection.
func (s *Server) MaxUnacked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxUnacked
}

// WaitFor waits until cond, evaluated under the server's lock after every
// change, holds, or ctx ends.
func (s *Server) WaitFor(ctx context.Context, cond func(stored, received []Msg) bool) error {
	for {
		s.mu.Lock()
		ok := cond(s.stored, s.received)
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakeinlet: %w", ctx.Err())
		}
	}
}

// WaitStored waits until at least n distinct messages are stored.
func (s *Server) WaitStored(ctx context.Context, n int) error {
	return s.WaitFor(ctx, func(stored, _ []Msg) bool { return len(stored) >= n })
}

func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// storeLocked stores m unless it is a duplicate.
func (s *Server) storeLocked(m Msg) {
	k := Key{m.Device, m.Boot, m.Seq}
	if !s.keys[k] {
		s.keys[k] = true
		s.stored = append(s.stored, m)
		hk := [2]string{m.Device, m.Boot}
		s.highest[hk] = max(s.highest[hk], m.Seq)
	}
	s.notify()
}

// receive records m and decides what to do with it.
func (s *Server) receive(m Msg) (Action, string) {
	a, reason := Store, ""
	if s.opts.OnMessage != nil {
		a, reason = s.opts.OnMessage(m)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = append(s.received, m)
	if a == Store || a == StoreNoAck {
		s.storeLocked(m)
	} else {
		s.notify()
	}
	return a, reason
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.nconn++
		n := s.nconn
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c, n)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *Server) serveConn(c net.Conn, n int) {
	remote := netip.MustParseAddrPort(c.RemoteAddr().String())
	br := bufio.NewReaderSize(c, MaxMessage+64)
	write := func(line []byte) bool {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Write(line)
		return err == nil
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return
	}
	h, err := wire.ParseHello(bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")))
	device, boot := h.Device, h.Boot
	s.mu.Lock()
	s.hellos++
	nh := s.hellos
	s.mu.Unlock()
	switch {
	case err != nil:
		write(wire.AppendHelloErr(nil, "bad-hello"))
		return
	case s.opts.Token != "" && h.Token != s.opts.Token:
		write(wire.AppendHelloErr(nil, "unauthorized"))
		return
	}
	if s.opts.Hello != nil {
		if reason := s.opts.Hello(nh, device, boot); reason != "" {
			write(wire.AppendHelloErr(nil, reason))
			return
		}
	}
	s.mu.Lock()
	last := s.highest[[2]string{device, boot}]
	s.mu.Unlock()
	if s.opts.Last != nil {
		last = s.opts.Last(device, boot, last)
	}
	if !write(wire.AppendOK(nil, last)) {
		return
	}
	var (
		unacked int   // stored and not yet acknowledged
		ackable int64 // highest seq a cumulative ACK may name
		lastSeq int64
	)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Too long: discard through the '\n' and reject by the seq at its head.
			seq, _ := wire.SeqPrefix(line)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil {
				return
			}
			if !write(wire.AppendErr(nil, seq, "too-long")) {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		seq, payload, perr := wire.ParseMessage(line)
		if perr != nil {
			// As the server: no seq to name.
			if !write(wire.AppendErr(nil, 0, "bad-seq")) {
				return
			}
			continue
		}
		if seq <= lastSeq {
			if !write(wire.AppendErr(nil, seq, "bad-seq")) {
				return
			}
			continue
		}
		lastSeq = seq
		m := Msg{Device: device, Boot: boot, Seq: seq, Payload: bytes.Clone(payload),
			Network: "tcp", Remote: remote, Conn: n}
		a, reason := s.receive(m)
		switch a {
		case Disconnect:
			return
		case Reject:
			if !write(wire.AppendErr(nil, seq, reason)) {
				return
			}
			continue
		case Ignore:
			continue
		case Store:
			ackable = seq
		}
		unacked++ // Store or StoreNoAck
		s.mu.Lock()
		s.maxUnacked = max(s.maxUnacked, unacked)
		s.mu.Unlock()
		send := br.Buffered() == 0
		if s.opts.AckWhen != nil {
			send = s.opts.AckWhen(m, unacked, !send)
		}
		if send && ackable > 0 {
			if !write(wire.AppendAck(nil, ackable)) {
				return
			}
			unacked, ackable = 0, 0
		}
	}
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf, ack := make([]byte, 65536), make([]byte, 0, 32)
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !wire.IsHello(buf[:n]) {
			continue // plain mode: not for this fake
		}
		h, payload, err := wire.ParseDatagram(buf[:n])
		if err != nil || (s.opts.Token != "" && h.Token != s.opts.Token) {
			continue // the server does not answer these either
		}
		device, boot, seq := h.Device, h.Boot, h.Seq
		m := Msg{Device: device, Boot: boot, Seq: seq, Payload: bytes.Clone(payload), Network: "udp", Remote: from}
		if a, _ := s.receive(m); a == Store {
			s.udp.WriteToUDPAddrPort(wire.AppendAck(ack[:0], seq), from)
		}
	}
}
