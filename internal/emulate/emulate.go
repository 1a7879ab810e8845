// Package emulate runs emulated devices as inlet send does: the tutorial
// sketches in plain mode byte for byte (connect per reading, a persistent
// stream, NUL-padded UDP datagrams), and acknowledged devices through package
// client. It owns the device modes and their counts; the command owns the flags
// and what is printed. It never imports the server's packages.
package emulate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inletdev/inlet/client"
)

// Config is what to emulate, checked by the caller.
type Config struct {
	Addr     string        // server host:port
	Mode     string        // tutorial, stream or udp
	Every    time.Duration // between readings, per device; 0: as fast as possible
	Count    int64         // readings per device; 0: until ctx ends (or Lines does)
	Devices  int
	Ack      bool   // INLET/1 through package client
	Device   string // with Ack: the device id (<Device>-<i> with several)
	Outbox   string // with Ack: the outbox directory (<Outbox>/<device> with several); "": memory
	Token    string // with Ack
	Template string // payload template: {n}, {rand}, {randint}
	// Lines, if set, are the readings (one device), instead of a counter.
	Lines <-chan []byte
}

// Run sends until Count, the end of Lines or ctx, then, with Ack, waits for
// every acknowledgement (up to 5 s more once ctx has ended). Summary tells how
// it went.
func (r *Fleet) Run(ctx context.Context) {
	r.start = time.Now()
	var wg sync.WaitGroup
	for i, d := range r.devices {
		wg.Go(func() { r.device(ctx, i, d, r.cfg.Lines) })
	}
	wg.Wait()
	if r.cfg.Ack {
		r.flush(ctx)
	}
}

// Close stops the acknowledged devices' clients (their outboxes keep what is
// not acknowledged).
func (r *Fleet) Close() { r.closeSenders() }

// device is one simulated device.
type device struct {
	name  string // how the server will name it: its source address, or its id with --ack
	local string // source IP, or "" for the default

	sender *client.Sender // with --ack

	// Counts in plain mode (with --ack the client counts).
	sent, retried, errors atomic.Int64
	unsent                atomic.Bool  // stopped while a reading waited to be sent (both modes)
	rejected              atomic.Int64 // --ack: payloads Send refused
}

// Fleet is one invocation of inlet send.
type Fleet struct {
	cfg      *Config
	devices  []*device
	template []part
	start    time.Time
	stderr   io.Writer
	warned   atomic.Int64 // unix nanos of the last plain-mode warning
}

func New(c *Config, stderr io.Writer) (*Fleet, error) {
	r := &Fleet{cfg: c, stderr: stderr}
	if c.Template != "" {
		r.template = parseTemplate(c.Template)
	}
	loopback := IsLoopback(c.Addr)
	for i := range c.Devices {
		d := &device{}
		if c.Devices > 1 && loopback {
			d.local = SourceAddr(i).String()
		}
		switch {
		case c.Ack:
			d.name = c.Device
			if c.Devices > 1 {
				d.name = fmt.Sprintf("%s-%d", c.Device, i+1)
			}
		case d.local != "":
			d.name = d.local
		case c.Devices > 1:
			d.name = fmt.Sprintf("device-%d", i+1)
		default:
			d.name = "device"
		}
		r.devices = append(r.devices, d)
	}
	if !c.Ack {
		return r, nil
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, d := range r.devices {
		cfg := client.Config{
			Addr: c.Addr, Device: d.name, Token: c.Token, LocalAddr: d.local,
			Network: "tcp", ConnectPerMessage: c.Mode == "tutorial", Logger: logger,
		}
		if c.Mode == "udp" {
			cfg.Network = "udp"
		}
		if c.Outbox != "" {
			cfg.Outbox = c.Outbox
			if c.Devices > 1 {
				cfg.Outbox = filepath.Join(c.Outbox, d.name)
			}
		}
		s, err := client.New(cfg)
		if err != nil {
			r.closeSenders()
			return nil, fmt.Errorf("send: device %s: %w", d.name, err)
		}
		d.sender = s
	}
	return r, nil
}

func (r *Fleet) closeSenders() {
	for _, d := range r.devices {
		if d.sender != nil {
			d.sender.Close()
		}
	}
}

// IsLoopback reports whether addr is an IPv4 loopback address (or
// localhost), from which any 127.0.0.0/8 source address can be used.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Is4() && ip.IsLoopback()
}

// SourceAddr is device i's source address on loopback: 127.0.0.10 onwards.
func SourceAddr(i int) netip.Addr {
	n := uint32(127)<<24 | uint32(10+i)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// flush waits for every acknowledgement: until it is all in when the run ended
// by itself, for up to 5 s more after an interruption.
func (r *Fleet) flush(ctx context.Context) {
	flushAll := func(ctx context.Context) {
		var wg sync.WaitGroup
		for _, d := range r.devices {
			wg.Go(func() { d.sender.Flush(ctx) })
		}
		wg.Wait()
	}
	flushAll(ctx)
	if ctx.Err() != nil {
		grace, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		flushAll(grace)
	}
}

// device runs device i until --count, the end of stdin or ctx.
func (r *Fleet) device(ctx context.Context, i int, d *device, lines <-chan []byte) {
	var conn *stream     // stream mode
	var udp *net.UDPConn // plain udp mode
	defer func() {
		if conn != nil {
			conn.close()
		}
		if udp != nil {
			udp.Close()
		}
	}()
	if r.cfg.Mode == "udp" && !r.cfg.Ack {
		var laddr *net.UDPAddr
		if d.local != "" {
			laddr = &net.UDPAddr{IP: net.ParseIP(d.local)}
		}
		var err error
		if udp, err = net.ListenUDP("udp", laddr); err != nil {
			r.warn(d, fmt.Errorf("udp socket: %w", err))
			d.unsent.Store(true)
			return
		}
	}
	raddr, _ := net.ResolveUDPAddr("udp", r.cfg.Addr)
	for n := int64(1); r.cfg.Count == 0 || n <= r.cfg.Count; n++ {
		var payload []byte
		if lines != nil {
			select {
			case l, ok := <-lines:
				if !ok {
					return
				}
				payload = l
			case <-ctx.Done():
				return
			}
		} else {
			if ctx.Err() != nil {
				return
			}
			payload = r.payload(n)
		}
		switch {
		case r.cfg.Ack:
			r.acked(ctx, d, payload)
		case r.cfg.Mode == "tutorial":
			r.tutorial(ctx, d, payload)
		case r.cfg.Mode == "stream":
			if conn == nil {
				conn = &stream{run: r, dev: d}
			}
			conn.send(ctx, payload)
		case r.cfg.Mode == "udp":
			r.datagram(udp, raddr, d, payload)
		}
		if ctx.Err() != nil {
			return
		}
		if r.cfg.Every > 0 && lines == nil && (r.cfg.Count == 0 || n < r.cfg.Count) {
			t := time.NewTimer(r.cfg.Every)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
	}
}

// payload is reading n: the counter, or the template filled in.
func (r *Fleet) payload(n int64) []byte {
	if r.template == nil {
		return strconv.AppendInt(nil, n, 10)
	}
	var b []byte
	for _, p := range r.template {
		switch p.kind {
		case partText:
			b = append(b, p.text...)
		case partCounter:
			b = strconv.AppendInt(b, n, 10)
		case partRand:
			b = strconv.AppendFloat(b, float64(rand.IntN(10001))/100, 'f', 2, 64)
		case partRandInt:
			b = strconv.AppendInt(b, int64(rand.IntN(1001)), 10)
		}
	}
	return b
}

// acked hands a reading to the device's client, waiting while its outbox
// is full.
func (r *Fleet) acked(ctx context.Context, d *device, payload []byte) {
	for {
		_, err := d.sender.Send(payload)
		if err == nil {
			return
		}
		if !errors.Is(err, client.ErrOutboxFull) {
			d.rejected.Add(1)
			r.warn(d, err)
			return
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			d.unsent.Store(true)
			return
		}
	}
}

// dial connects from the device's address.
func (r *Fleet) dial(ctx context.Context, d *device) (net.Conn, error) {
	dl := net.Dialer{Timeout: 5 * time.Second}
	if d.local != "" {
		dl.LocalAddr = &net.TCPAddr{IP: net.ParseIP(d.local)}
	}
	return dl.DialContext(ctx, "tcp", r.cfg.Addr)
}

// tutorial is one pass of the sketch's loop: connect, print, stop. A failed
// connect waits 2 s and tries the same value again.
func (r *Fleet) tutorial(ctx context.Context, d *device, payload []byte) {
	line := append(payload, '\r', '\n')
	for {
		c, err := r.dial(ctx, d)
		if err != nil {
			if ctx.Err() != nil {
				d.unsent.Store(true)
				return
			}
			r.warn(d, fmt.Errorf("connect: %w; retrying in 2s", err))
			d.retried.Add(1)
			t := time.NewTimer(2 * time.Second)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				d.unsent.Store(true)
				return
			}
		}
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Write(line)
		if cerr := c.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			d.errors.Add(1)
			r.warn(d, fmt.Errorf("write: %w", err))
			return
		}
		d.sent.Add(1)
		return
	}
}

// stream is a device's persistent plain connection.
type stream struct {
	run     *Fleet
	dev     *device
	conn    net.Conn
	closed  chan struct{} // closed when the server closes or resets the connection
	backoff time.Duration
}

// send writes one line, reconnecting first if the connection is gone. A line
// whose write failed is written again on the next connection.
func (s *stream) send(ctx context.Context, payload []byte) {
	line := append(payload, '\r', '\n')
	for ctx.Err() == nil {
		if s.conn != nil {
			select {
			case <-s.closed:
				s.drop()
			default:
			}
		}
		if s.conn == nil {
			c, err := s.run.dial(ctx, s.dev)
			if err != nil {
				s.run.warn(s.dev, fmt.Errorf("connect: %w", err))
				if !s.wait(ctx) {
					break
				}
				continue
			}
			s.conn, s.closed = c, make(chan struct{})
			go func(c net.Conn, closed chan struct{}) {
				// The server never writes in plain mode: a read returns only
				// when the connection ends.
				io.Copy(io.Discard, c)
				close(closed)
			}(c, s.closed)
		}
		s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := s.conn.Write(line); err != nil {
			s.run.warn(s.dev, fmt.Errorf("write: %w; reconnecting", err))
			s.drop()
			s.dev.retried.Add(1)
			if !s.wait(ctx) {
				break
			}
			continue
		}
		s.backoff = 0
		s.dev.sent.Add(1)
		return
	}
	s.dev.unsent.Store(true)
}

// wait sleeps before a reconnect: exponential from 100 ms to 30 s, full jitter.
func (s *stream) wait(ctx context.Context) bool {
	s.backoff = min(max(2*s.backoff, 100*time.Millisecond), 30*time.Second)
	t := time.NewTimer(time.Duration(rand.Int64N(int64(s.backoff) + 1)))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *stream) drop() {
	s.conn.Close()
	<-s.closed
	s.conn = nil
}

func (s *stream) close() {
	if s.conn != nil {
		s.drop()
	}
}

// datagram is the UDP sketch: the reading NUL-padded to 10 bytes.
func (r *Fleet) datagram(c *net.UDPConn, raddr *net.UDPAddr, d *device, payload []byte) {
	for len(payload) < 10 {
		payload = append(payload, 0)
	}
	if raddr == nil {
		d.errors.Add(1)
		return
	}
	if _, err := c.WriteToUDP(payload, raddr); err != nil {
		d.errors.Add(1)
		r.warn(d, fmt.Errorf("udp write: %w", err))
		return
	}
	d.sent.Add(1)
}

// ReadLines reads lines from in, without "\n" or "\r\n", skipping empty
// ones, until the end of input or ctx. (A read blocked on a terminal stays
// blocked; the process is about to exit then.)
func ReadLines(ctx context.Context, in io.Reader) <-chan []byte {
	ch := make(chan []byte)
	go func() {
		defer close(ch)
		br := bufio.NewReaderSize(in, 64<<10)
		for {
			line, err := br.ReadBytes('\n')
			line = []byte(strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r"))
			if len(line) > 0 {
				select {
				case ch <- line:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// warn prints a problem on stderr, at most once a second over all devices.
func (r *Fleet) warn(d *device, err error) {
	now := time.Now().UnixNano()
	last := r.warned.Load()
	if now-last < int64(time.Second) || !r.warned.CompareAndSwap(last, now) {
		return
	}
	fmt.Fprintf(r.stderr, "inlet send: %s: %v\n", d.name, err)
}

// part is a piece of a payload template.
type part struct {
	kind int
	text string
}

const (
	partText = iota
	partCounter
	partRand
	partRandInt
)

func parseTemplate(t string) []part {
	var parts []part
	for t != "" {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			parts = append(parts, part{kind: partText, text: t})
			break
		}
		if i > 0 {
			parts = append(parts, part{kind: partText, text: t[:i]})
			t = t[i:]
		}
		switch {
		case strings.HasPrefix(t, "{n}"):
			parts = append(parts, part{kind: partCounter})
			t = t[len("{n}"):]
		case strings.HasPrefix(t, "{rand}"):
			parts = append(parts, part{kind: partRand})
			t = t[len("{rand}"):]
		case strings.HasPrefix(t, "{randint}"):
			parts = append(parts, part{kind: partRandInt})
			t = t[len("{randint}"):]
		default:
			parts = append(parts, part{kind: partText, text: "{"})
			t = t[1:]
		}
	}
	return parts
}
