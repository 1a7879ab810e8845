package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/inletdev/inlet/client"
)

// sendStdin is where --stdin reads; tests replace it.
var sendStdin io.Reader = os.Stdin

const sendSummary = `Send readings to an inlet server like a device would: the tutorial sketch byte for
byte, many devices at once, or lines from stdin (a reliable nc).

Modes (--mode):
  tutorial  connect, write "N\r\n", close; every --every. A failed connect waits 2s
            and retries the same value, as the sketch does.
  stream    one connection per device, a line "N\r\n" every --every; reconnects with
            back-off when it drops. Plain TCP cannot tell which lines written before a
            drop arrived: some may be lost (use --ack to know).
  udp       the UDP sketch: one 10-byte datagram per reading, the counter padded with
            NUL bytes (longer payloads are sent as they are).

--ack switches any mode to the acknowledged protocol (INLET/1): tutorial connects per
message, stream keeps one connection, udp repeats each datagram until acknowledged.
Payloads are then the bare value ("N"), numbered by the protocol, and kept in an
outbox (--outbox, or memory) until the server has them on disk.

With --devices N and a loopback target each device sends from its own address,
127.0.0.10, 127.0.0.11, ..., so the server sees N devices.
Progress goes to stderr when it is a terminal, the summary to stderr (--json: stdout).
Exit status 0 when every reading was sent (with --ack: acknowledged), else 1.`

// sendConfig is what the flags of inlet send say.
type sendConfig struct {
	addr     string
	mode     string
	every    time.Duration
	count    int64
	devices  int
	ack      bool
	device   string
	outbox   string
	template string
	stdin    bool
	json     bool
	token    string
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("send", sendSummary, stderr)
	var c sendConfig
	fs.StringVar(&c.addr, "addr", "", "server address (default 127.0.0.1:3000, with --mode udp 127.0.0.1:3001)")
	fs.StringVar(&c.mode, "mode", "tutorial", "tutorial, stream or udp")
	fs.DurationVar(&c.every, "every", time.Second, "wait between readings, per device; 0: as fast as possible (not used with --stdin)")
	fs.Int64Var(&c.count, "count", 0, "readings per device; 0: until interrupted (with --stdin: until end of input)")
	fs.IntVar(&c.devices, "devices", 1, "number of simulated devices")
	fs.BoolVar(&c.ack, "ack", false, "use the acknowledged protocol (INLET/1)")
	fs.StringVar(&c.device, "device", "", "with --ack: the device id (default: the host name); with --devices N: <device>-1 ... <device>-N")
	fs.StringVar(&c.outbox, "outbox", "", "with --ack: directory of the durable outbox (with --devices N: <dir>/<device>); default: in memory")
	fs.StringVar(&c.token, "token", "", "with --ack: token to send in the hello")
	fs.StringVar(&c.template, "template", "", "payload template: {n} the counter, {rand} a random 0-100 with 2 decimals, {randint} 0-1000; e.g. temp={rand},n={n}")
	fs.BoolVar(&c.stdin, "stdin", false, "send the lines of stdin instead of a counter, as one device (with --ack, --mode stream keeps one connection for them all)")
	fs.BoolVar(&c.json, "json", false, "print the summary as JSON on stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := c.check(set); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	run, err := newSendRun(&c, stderr)
	if err != nil {
		return err
	}
	return run.run(ctx, stdout, stderr)
}

// check validates the flags and fills in the defaults that depend on others.
func (c *sendConfig) check(set map[string]bool) error {
	switch c.mode {
	case "tutorial", "stream", "udp":
	default:
		return fmt.Errorf("--mode %q: want tutorial, stream or udp", c.mode)
	}
	if c.addr == "" {
		c.addr = "127.0.0.1:3000"
		if c.mode == "udp" {
			c.addr = "127.0.0.1:3001"
		}
	}
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return fmt.Errorf("--addr %q: %w", c.addr, err)
	}
	switch {
	case c.every < 0:
		return errors.New("--every must not be negative")
	case c.count < 0:
		return errors.New("--count must not be negative")
	case c.devices < 1:
		return errors.New("--devices must be at least 1")
	case c.devices > 1 && c.stdin:
		return errors.New("--stdin sends as one device: leave out --devices")
	case c.stdin && c.template != "":
		return errors.New("--stdin and --template exclude each other")
	case !c.ack && (set["device"] || set["outbox"] || set["token"]):
		return errors.New("--device, --outbox and --token need --ack")
	case c.mode != "udp" && strings.ContainsAny(c.template, "\n"):
		return errors.New("--template: a newline would split the message over TCP")
	}
	if c.ack && c.device == "" {
		c.device = sendHostDevice(c.devices)
	}
	return nil
}

// sendHostDevice makes a device id from the host name, leaving room for "-<i>".
func sendHostDevice(devices int) string {
	host, _ := os.Hostname()
	var b strings.Builder
	for _, r := range host {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == ':', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := b.String()
	if name == "" {
		name = "inlet-send"
	}
	limit := 64
	if devices > 1 {
		limit -= 1 + len(strconv.Itoa(devices))
	}
	if len(name) > limit {
		name = name[:limit]
	}
	return name
}

// sendDevice is one simulated device.
type sendDevice struct {
	name  string // how the server will name it: its source address, or its id with --ack
	local string // source IP, or "" for the default

	sender *client.Sender // with --ack

	// Counts in plain mode (with --ack the client counts).
	sent, retried, errors atomic.Int64
	unsent                atomic.Bool  // stopped while a reading waited to be sent (both modes)
	rejected              atomic.Int64 // --ack: payloads Send refused
}

// sendRun is one invocation of inlet send.
type sendRun struct {
	cfg      *sendConfig
	devices  []*sendDevice
	template []sendPart
	start    time.Time
	stderr   io.Writer
	warned   atomic.Int64 // unix nanos of the last plain-mode warning
}

func newSendRun(c *sendConfig, stderr io.Writer) (*sendRun, error) {
	r := &sendRun{cfg: c, stderr: stderr}
	if c.template != "" {
		r.template = parseSendTemplate(c.template)
	}
	loopback := sendIsLoopback(c.addr)
	for i := range c.devices {
		d := &sendDevice{}
		if c.devices > 1 && loopback {
			d.local = sendSourceAddr(i).String()
		}
		switch {
		case c.ack:
			d.name = c.device
			if c.devices > 1 {
				d.name = fmt.Sprintf("%s-%d", c.device, i+1)
			}
		case d.local != "":
			d.name = d.local
		case c.devices > 1:
			d.name = fmt.Sprintf("device-%d", i+1)
		default:
			d.name = "device"
		}
		r.devices = append(r.devices, d)
	}
	if !c.ack {
		return r, nil
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, d := range r.devices {
		cfg := client.Config{
			Addr: c.addr, Device: d.name, Token: c.token, LocalAddr: d.local,
			Network: "tcp", ConnectPerMessage: c.mode == "tutorial", Logger: logger,
		}
		if c.mode == "udp" {
			cfg.Network = "udp"
		}
		if c.outbox != "" {
			cfg.Outbox = c.outbox
			if c.devices > 1 {
				cfg.Outbox = filepath.Join(c.outbox, d.name)
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

func (r *sendRun) closeSenders() {
	for _, d := range r.devices {
		if d.sender != nil {
			d.sender.Close()
		}
	}
}

// sendIsLoopback reports whether addr is an IPv4 loopback address (or
// localhost), from which any 127.0.0.0/8 source address can be used.
func sendIsLoopback(addr string) bool {
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

// sendSourceAddr is device i's source address on loopback: 127.0.0.10 onwards.
func sendSourceAddr(i int) netip.Addr {
	n := uint32(127)<<24 | uint32(10+i)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

func (r *sendRun) run(ctx context.Context, stdout, stderr io.Writer) error {
	r.start = time.Now()
	var lines <-chan []byte
	if r.cfg.stdin {
		readCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		lines = sendReadLines(readCtx, sendStdin)
	}
	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() {
		defer close(progressDone)
		if isTerminal(stderr) {
			r.progress(stderr, stopProgress)
		}
	}()

	var wg sync.WaitGroup
	for i, d := range r.devices {
		wg.Go(func() { r.device(ctx, i, d, lines) })
	}
	wg.Wait()
	if r.cfg.ack {
		r.flush(ctx)
	}
	close(stopProgress)
	<-progressDone
	r.closeSenders()

	sum := r.summary()
	if r.cfg.json {
		if err := json.NewEncoder(stdout).Encode(&sum); err != nil {
			return err
		}
	} else {
		r.printSummary(stderr, &sum)
	}
	if !sum.OK {
		if r.cfg.ack {
			return fmt.Errorf("send: %d readings not acknowledged, %d rejected", sum.Unacked, sum.Errors)
		}
		return fmt.Errorf("send: %d readings not sent", sum.Unsent+sum.Errors)
	}
	return nil
}

// flush waits for every acknowledgement: until it is all in when the run ended
// by itself, for up to 5 s more after an interruption.
func (r *sendRun) flush(ctx context.Context) {
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
func (r *sendRun) device(ctx context.Context, i int, d *sendDevice, lines <-chan []byte) {
	var conn *sendStream // stream mode
	var udp *net.UDPConn // plain udp mode
	defer func() {
		if conn != nil {
			conn.close()
		}
		if udp != nil {
			udp.Close()
		}
	}()
	if r.cfg.mode == "udp" && !r.cfg.ack {
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
	raddr, _ := net.ResolveUDPAddr("udp", r.cfg.addr)
	for n := int64(1); r.cfg.count == 0 || n <= r.cfg.count; n++ {
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
		case r.cfg.ack:
			r.sendAcked(ctx, d, payload)
		case r.cfg.mode == "tutorial":
			r.sendTutorial(ctx, d, payload)
		case r.cfg.mode == "stream":
			if conn == nil {
				conn = &sendStream{run: r, dev: d}
			}
			conn.send(ctx, payload)
		case r.cfg.mode == "udp":
			r.sendDatagram(udp, raddr, d, payload)
		}
		if ctx.Err() != nil {
			return
		}
		if r.cfg.every > 0 && lines == nil && (r.cfg.count == 0 || n < r.cfg.count) {
			t := time.NewTimer(r.cfg.every)
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
func (r *sendRun) payload(n int64) []byte {
	if r.template == nil {
		return strconv.AppendInt(nil, n, 10)
	}
	var b []byte
	for _, p := range r.template {
		switch p.kind {
		case sendText:
			b = append(b, p.text...)
		case sendCounter:
			b = strconv.AppendInt(b, n, 10)
		case sendRand:
			b = strconv.AppendFloat(b, float64(rand.IntN(10001))/100, 'f', 2, 64)
		case sendRandInt:
			b = strconv.AppendInt(b, int64(rand.IntN(1001)), 10)
		}
	}
	return b
}

// sendAcked hands a reading to the device's client, waiting while its outbox
// is full.
func (r *sendRun) sendAcked(ctx context.Context, d *sendDevice, payload []byte) {
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
func (r *sendRun) dial(ctx context.Context, d *sendDevice) (net.Conn, error) {
	dl := net.Dialer{Timeout: 5 * time.Second}
	if d.local != "" {
		dl.LocalAddr = &net.TCPAddr{IP: net.ParseIP(d.local)}
	}
	return dl.DialContext(ctx, "tcp", r.cfg.addr)
}

// sendTutorial is one pass of the sketch's loop: connect, print, stop. A failed
// connect waits 2 s and tries the same value again.
func (r *sendRun) sendTutorial(ctx context.Context, d *sendDevice, payload []byte) {
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

// sendStream is a device's persistent plain connection.
type sendStream struct {
	run     *sendRun
	dev     *sendDevice
	conn    net.Conn
	closed  chan struct{} // closed when the server closes or resets the connection
	backoff time.Duration
}

// send writes one line, reconnecting first if the connection is gone. A line
// whose write failed is written again on the next connection.
func (s *sendStream) send(ctx context.Context, payload []byte) {
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
func (s *sendStream) wait(ctx context.Context) bool {
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

func (s *sendStream) drop() {
	s.conn.Close()
	<-s.closed
	s.conn = nil
}

func (s *sendStream) close() {
	if s.conn != nil {
		s.drop()
	}
}

// sendDatagram is the UDP sketch: the reading NUL-padded to 10 bytes.
func (r *sendRun) sendDatagram(c *net.UDPConn, raddr *net.UDPAddr, d *sendDevice, payload []byte) {
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

// sendReadLines reads lines from in, without "\n" or "\r\n", skipping empty
// ones, until the end of input or ctx. (A read blocked on a terminal stays
// blocked; the process is about to exit then.)
func sendReadLines(ctx context.Context, in io.Reader) <-chan []byte {
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
func (r *sendRun) warn(d *sendDevice, err error) {
	now := time.Now().UnixNano()
	last := r.warned.Load()
	if now-last < int64(time.Second) || !r.warned.CompareAndSwap(last, now) {
		return
	}
	fmt.Fprintf(r.stderr, "inlet send: %s: %v\n", d.name, err)
}

// sendPart is a piece of a payload template.
type sendPart struct {
	kind int
	text string
}

const (
	sendText = iota
	sendCounter
	sendRand
	sendRandInt
)

func parseSendTemplate(t string) []sendPart {
	var parts []sendPart
	for t != "" {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			parts = append(parts, sendPart{kind: sendText, text: t})
			break
		}
		if i > 0 {
			parts = append(parts, sendPart{kind: sendText, text: t[:i]})
			t = t[i:]
		}
		switch {
		case strings.HasPrefix(t, "{n}"):
			parts = append(parts, sendPart{kind: sendCounter})
			t = t[len("{n}"):]
		case strings.HasPrefix(t, "{rand}"):
			parts = append(parts, sendPart{kind: sendRand})
			t = t[len("{rand}"):]
		case strings.HasPrefix(t, "{randint}"):
			parts = append(parts, sendPart{kind: sendRandInt})
			t = t[len("{randint}"):]
		default:
			parts = append(parts, sendPart{kind: sendText, text: "{"})
			t = t[1:]
		}
	}
	return parts
}

// sendDeviceReport is one device in the summary.
type sendDeviceReport struct {
	Device  string `json:"device"`
	Sent    int64  `json:"sent"`
	Acked   *int64 `json:"acked,omitempty"`
	Retried int64  `json:"retried"`
	Errors  int64  `json:"errors"`
	Pending *int64 `json:"pending,omitempty"`
}

// sendReport is the summary of inlet send (--json prints it).
type sendReport struct {
	Mode      string             `json:"mode"`
	Ack       bool               `json:"ack"`
	Addr      string             `json:"addr"`
	DurationS float64            `json:"duration_s"`
	Sent      int64              `json:"sent"`
	Acked     *int64             `json:"acked,omitempty"`
	Retried   int64              `json:"retried"`
	Errors    int64              `json:"errors"`
	Pending   *int64             `json:"pending,omitempty"`
	OK        bool               `json:"ok"`
	Devices   []sendDeviceReport `json:"devices"`

	Unsent  int64 `json:"-"`
	Unacked int64 `json:"-"`
}

// totals adds up the devices' counts: sent, acked, retried, errors, pending.
func (r *sendRun) totals() (sent, acked, retried, errs, pending int64) {
	for _, d := range r.devices {
		dr := r.deviceReport(d)
		sent += dr.Sent
		retried += dr.Retried
		errs += dr.Errors
		if dr.Acked != nil {
			acked += *dr.Acked
			pending += *dr.Pending
		}
	}
	return
}

func (r *sendRun) deviceReport(d *sendDevice) sendDeviceReport {
	if d.sender == nil {
		return sendDeviceReport{Device: d.name, Sent: d.sent.Load(), Retried: d.retried.Load(), Errors: d.errors.Load()}
	}
	st := d.sender.Stats()
	// A retry is any attempt made again after a failure: a connection after a
	// failed one (the readings waited for it, as the tutorial's 2 s retry of a
	// failed connect), and a reading transmitted again.
	return sendDeviceReport{Device: d.name, Sent: st.Sent, Acked: &st.Acked, Retried: st.Retried + st.Reconnects,
		Errors: st.Errors + d.rejected.Load(), Pending: &st.Pending}
}

func (r *sendRun) summary() sendReport {
	rep := sendReport{Mode: r.cfg.mode, Ack: r.cfg.ack, Addr: r.cfg.addr, DurationS: time.Since(r.start).Seconds()}
	for _, d := range r.devices {
		dr := r.deviceReport(d)
		rep.Devices = append(rep.Devices, dr)
		rep.Sent += dr.Sent
		rep.Retried += dr.Retried
		rep.Errors += dr.Errors
		if d.unsent.Load() {
			rep.Unsent++
		}
		if dr.Acked != nil {
			if rep.Acked == nil {
				rep.Acked, rep.Pending = new(int64), new(int64)
			}
			*rep.Acked += *dr.Acked
			*rep.Pending += *dr.Pending
			rep.Unacked += *dr.Pending
		}
	}
	rep.Unacked += rep.Unsent
	rep.OK = rep.Errors == 0 && rep.Unsent == 0 && rep.Unacked == 0
	return rep
}

func (r *sendRun) printSummary(w io.Writer, rep *sendReport) {
	mode := rep.Mode
	if rep.Ack {
		mode += ", acknowledged"
	}
	fmt.Fprintf(w, "inlet send: %s to %s, %d device(s), %.1fs: %s\n", mode, rep.Addr, len(rep.Devices), rep.DurationS, sendCounts(rep.Sent, rep.Acked, rep.Retried, rep.Errors, rep.Pending))
	if len(rep.Devices) > 1 && len(rep.Devices) <= 10 {
		for _, d := range rep.Devices {
			fmt.Fprintf(w, "  %-20s %s\n", d.Device, sendCounts(d.Sent, d.Acked, d.Retried, d.Errors, d.Pending))
		}
	}
}

func sendCounts(sent int64, acked *int64, retried, errs int64, pending *int64) string {
	s := fmt.Sprintf("sent %d", sent)
	if acked != nil {
		s += fmt.Sprintf(", acked %d", *acked)
	}
	s += fmt.Sprintf(", retried %d, errors %d", retried, errs)
	if pending != nil {
		s += fmt.Sprintf(", pending %d", *pending)
	}
	return s
}

// progress rewrites one status line on w every second until stop.
func (r *sendRun) progress(w io.Writer, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var prev int64
	for {
		select {
		case <-stop:
			fmt.Fprint(w, "\r\x1b[K")
			return
		case <-t.C:
		}
		sent, acked, retried, errs, _ := r.totals()
		line := fmt.Sprintf("sent %d", sent)
		if r.cfg.ack {
			line += fmt.Sprintf("  acked %d", acked)
		}
		line += fmt.Sprintf("  retried %d  errors %d  %d/s", retried, errs, sent-prev)
		prev = sent
		fmt.Fprintf(w, "\r%s\x1b[K", line)
	}
}
