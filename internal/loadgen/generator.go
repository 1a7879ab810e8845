package loadgen

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inletdev/inlet/internal/emulate"
)

// MaxDevices bounds --devices: every device needs a loopback address of its own.
const MaxDevices = 10000

// Config describes one run of the generator.
type Config struct {
	Scenario *Scenario
	Target   netip.AddrPort // a loopback address; see ResolveLoopback
	Devices  int            // 0: the scenario's default
	Duration time.Duration  // the run ends after this long (required)
	Count    int64          // and after this many messages in all; 0: no bound
	Rate     float64        // messages per second per device; 0: as fast as possible
	// SenderCPU pins the OS thread of every UDP sender to this CPU, so that on a
	// small machine the sender does not take the receiver's CPU; -1 pins nothing.
	SenderCPU int
	// Window is, for the ack scenario, the most messages one connection may have
	// sent and not yet seen acknowledged; 0: DefaultWindow.
	Window int
	// OnIdle, for the idle scenarios, is called once every connection is open and
	// has been held quiet for Duration, before the last messages are sent; the
	// caller measures the server there. An error ends the run.
	OnIdle func(ctx context.Context, st IdleStats) error
	// TLS, if set, makes every TCP connection a TLS client (TCP scenarios only).
	TLS *TLSConfig
}

// DefaultWindow is the ack scenario's window when Config.Window is 0.
const DefaultWindow = 64

// MaxWindow bounds Config.Window.
const MaxWindow = 1 << 16

// Result is what a run sent.
type Result struct {
	Sent       int64         // messages handed to the kernel in full
	Errors     int64         // failed dials and writes (each retried after a pause)
	FirstError string        // the first of them, to explain a number that looks wrong
	Elapsed    time.Duration // from the start until every device stopped
	// For the acknowledged scenarios (Scenario.Acked): the messages the server
	// acknowledged, and the latency from sending each to reading its ACK.
	Acked   int64
	Latency Latency
	// With TLS: the handshakes completed, and how many of them were resumed.
	Handshakes, Resumed int64
}

// Generator sends one scenario's load to one target.
type Generator struct {
	cfg      Config
	target   netip.AddrPort
	sent     atomic.Int64
	errs     atomic.Int64
	budget   atomic.Int64 // messages still allowed when cfg.Count > 0
	firstErr atomic.Pointer[string]
	acked    atomic.Int64
	// TLS handshakes completed, and of them resumed.
	handshakes, resumed atomic.Int64
	boot                string // acknowledged scenarios: this run's boot id, random hex

	histMu sync.Mutex
	hist   histogram // every device's latencies, merged as each stops
}

// New checks cfg and returns a generator for it.
func New(cfg Config) (*Generator, error) {
	switch {
	case cfg.Scenario == nil:
		return nil, errors.New("loadgen: no scenario")
	case !cfg.Target.IsValid() || cfg.Target.Port() == 0:
		return nil, fmt.Errorf("loadgen: target %s: want an address and a port", cfg.Target)
	case !cfg.Target.Addr().IsLoopback():
		return nil, fmt.Errorf("loadgen: target %s is not a loopback address", cfg.Target)
	case cfg.Devices < 0 || cfg.Devices > MaxDevices:
		return nil, fmt.Errorf("loadgen: %d devices: want 1 to %d", cfg.Devices, MaxDevices)
	case cfg.Duration <= 0:
		return nil, errors.New("loadgen: the duration must be positive")
	case cfg.Count < 0:
		return nil, errors.New("loadgen: the count must not be negative")
	case cfg.Rate < 0:
		return nil, errors.New("loadgen: the rate must not be negative")
	case cfg.SenderCPU >= maxCPUs:
		return nil, fmt.Errorf("loadgen: CPU %d out of range", cfg.SenderCPU)
	case cfg.Window < 0 || cfg.Window > MaxWindow:
		return nil, fmt.Errorf("loadgen: window %d: want 1 to %d", cfg.Window, MaxWindow)
	case cfg.TLS != nil && cfg.Scenario.Transport != "tcp":
		return nil, fmt.Errorf("loadgen: %s: TLS is for the TCP scenarios", cfg.Scenario.Name)
	case cfg.TLS != nil && cfg.TLS.Version != tls.VersionTLS12 && cfg.TLS.Version != tls.VersionTLS13:
		return nil, fmt.Errorf("loadgen: TLS version 0x%04x: want 1.2 or 1.3", cfg.TLS.Version)
	case cfg.Scenario.Idle && (cfg.Count > 0 || cfg.Rate > 0):
		return nil, fmt.Errorf("loadgen: %s sends two messages per device: no count or rate", cfg.Scenario.Name)
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Devices == 0 {
		cfg.Devices = cfg.Scenario.DefaultDevices
	}
	if cfg.SenderCPU < 0 {
		cfg.SenderCPU = -1
	}
	g := &Generator{cfg: cfg, target: netip.AddrPortFrom(cfg.Target.Addr().Unmap(), cfg.Target.Port())}
	g.budget.Store(cfg.Count)
	if cfg.Scenario.Acked {
		// A fresh boot id per run: every run starts new sequences, also against
		// a server (--target) whose database holds an earlier run's.
		var b [8]byte
		rand.Read(b[:])
		g.boot = hex.EncodeToString(b[:])
	}
	return g, nil
}

// Boot is the boot id the acknowledged scenarios' devices send in their hello.
func (g *Generator) Boot() string { return g.boot }

// Acked is the number of messages acknowledged so far; safe to call while Run runs.
func (g *Generator) Acked() int64 { return g.acked.Load() }

// Devices is the number of devices the run uses.
func (g *Generator) Devices() int { return g.cfg.Devices }

// Sent is the number of messages sent so far; safe to call while Run runs.
func (g *Generator) Sent() int64 { return g.sent.Load() }

// Run sends until the duration passes or the count is reached, then lets every
// device finish the message in hand (a stream flushes its buffer and closes
// cleanly). When ctx ends first, Run abandons the load at once and returns the
// context's error. A generator runs once.
func (g *Generator) Run(ctx context.Context) (Result, error) {
	if g.cfg.Scenario.Idle {
		return g.runIdle(ctx)
	}
	stop, cancel := context.WithTimeout(ctx, g.cfg.Duration)
	defer cancel()
	start := time.Now()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range g.cfg.Devices {
		d := &device{
			g:       g,
			index:   i,
			src:     sourceAddr(g.target.Addr(), i),
			stop:    stop,
			abort:   ctx,
			counter: 1,
			pace:    pacer{rate: g.cfg.Rate, start: start.Add(phase(i, g.cfg.Devices, g.cfg.Rate))},
			tls:     g.deviceTLS(),
		}
		if g.cfg.Scenario.Acked {
			d.hist = new(histogram)
		}
		wg.Go(func() {
			defer d.pace.close()
			defer g.mergeLatency(d)
			if err := g.cfg.Scenario.run(d); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel() // a device that cannot run spoils the measurement
			}
		})
	}
	wg.Wait()
	res := Result{Sent: g.sent.Load(), Errors: g.errs.Load(), Elapsed: time.Since(start), Acked: g.acked.Load(),
		Handshakes: g.handshakes.Load(), Resumed: g.resumed.Load()}
	res.Latency = g.hist.summary()
	if p := g.firstErr.Load(); p != nil {
		res.FirstError = *p
	}
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

func (g *Generator) mergeLatency(d *device) {
	if d.hist == nil {
		return
	}
	g.histMu.Lock()
	g.hist.merge(d.hist)
	g.histMu.Unlock()
}

// take reserves up to n messages of the count and returns how many it got.
func (g *Generator) take(n int64) int64 {
	if g.cfg.Count <= 0 {
		return n
	}
	for {
		left := g.budget.Load()
		if left <= 0 {
			return 0
		}
		k := min(n, left)
		if g.budget.CompareAndSwap(left, left-k) {
			return k
		}
	}
}

// giveBack returns reserved messages that were not sent.
func (g *Generator) giveBack(n int64) {
	if g.cfg.Count > 0 && n > 0 {
		g.budget.Add(n)
	}
}

// tcpDialer dials from src without a keep-alive (a socket option per connection
// the tutorial devices do not set either).
func (g *Generator) tcpDialer(src netip.Addr) *net.Dialer {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: -1, Control: bindAddressNoPort}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	return d
}

// sourceAddr is device i's own loopback address (emulate.SourceAddr, as inlet
// send's), so that the server sees one device per emulated device. On ::1 there
// are no other addresses, and the kernel chooses.
func sourceAddr(target netip.Addr, i int) netip.Addr {
	if !target.Is4() {
		return netip.Addr{}
	}
	return emulate.SourceAddr(i)
}

// ResolveLoopback resolves host:port and refuses anything that is not a loopback
// address: the generator is never to be pointed at somebody else's server.
func ResolveLoopback(ctx context.Context, addr string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("target %q: %w", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, fmt.Errorf("target %q: bad port %q", addr, port)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else if ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
		return netip.AddrPort{}, fmt.Errorf("target %q: %w", addr, err)
	}
	var pick netip.Addr
	for _, ip := range ips {
		ip = ip.Unmap()
		if !ip.IsLoopback() {
			return netip.AddrPort{}, fmt.Errorf("target %q: %s is not a loopback address; inlet bench only sends to this machine", addr, ip)
		}
		if !pick.IsValid() || (ip.Is4() && !pick.Is4()) {
			pick = ip
		}
	}
	if !pick.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("target %q: no address", addr)
	}
	return netip.AddrPortFrom(pick, uint16(p)), nil
}

// device is one emulated device: its loop runs in a goroutine of its own.
type device struct {
	g       *Generator
	index   int             // from 0; the acknowledged scenarios' id is bench-<index>
	src     netip.Addr      // its own loopback address, or none
	stop    context.Context // the run is over: finish the message in hand
	abort   context.Context // the caller gave up: return at once
	counter int64           // the next counter to send, from 1
	pace    pacer
	backoff time.Duration
	hist    *histogram  // acknowledged scenarios: this device's ack latencies
	tls     *tls.Config // its TLS client configuration (and session cache), or nil
}

// stopped reports whether the run is over. A dial cut short by the end of the
// run may fail with a timeout a moment before the context says it is done.
func (d *device) stopped() bool {
	if d.stop.Err() != nil {
		return true
	}
	dl, ok := d.stop.Deadline()
	return ok && !time.Now().Before(dl)
}

// failed counts a failed dial, write or acknowledgement and pauses, 1 ms doubling to 100 ms, so
// that a dead server does not turn the generator into a busy loop.
func (d *device) failed(err error) {
	d.g.countError(err)
	d.backoff = min(max(2*d.backoff, time.Millisecond), 100*time.Millisecond)
	d.pace.sleep(d.stop, d.backoff)
}

// countError counts an error without pausing.
func (g *Generator) countError(err error) {
	g.errs.Add(1)
	if g.firstErr.Load() == nil {
		s := err.Error()
		g.firstErr.CompareAndSwap(nil, &s)
	}
}

// ok ends a series of failures.
func (d *device) ok() { d.backoff = 0 }

// phase is device i's offset within one interval of the rate: the devices are
// spread evenly over it, as a real fleet's are, instead of all sending at the
// same instant. In step, n devices queue n messages at once every interval, and
// each waits behind the others: the ack latency measured was the burst's, which
// no fleet of independent devices sees (issue 15: p50 3x that of a client with
// devices at random phases).
func phase(i, devices int, rate float64) time.Duration {
	if rate <= 0 || devices <= 1 {
		return 0
	}
	return time.Duration(float64(i) / float64(devices) / rate * float64(time.Second))
}

// pacer spaces one device's messages at its rate. It counts slots, not
// successes, so that a device catching up after an error does not burst.
type pacer struct {
	rate  float64 // messages per second; 0: no pacing
	start time.Time
	n     int64 // slots handed out
	timer *time.Timer
}

// next waits until at least one message is due and returns how many are, at
// most max; without a rate it returns max at once. It returns 0 once ctx ends.
func (p *pacer) next(ctx context.Context, max int64) int64 {
	if ctx.Err() != nil {
		return 0
	}
	if p.rate <= 0 {
		p.n += max
		return max
	}
	for {
		// Floor, not truncation: a device whose phase is still ahead has nothing due.
		due := int64(math.Floor(time.Since(p.start).Seconds()*p.rate)) + 1 - p.n
		if due > 0 {
			due = min(due, max)
			p.n += due
			return due
		}
		at := p.start.Add(time.Duration(float64(p.n) / p.rate * float64(time.Second)))
		if !p.sleep(ctx, time.Until(at)) {
			return 0
		}
	}
}

// sleep waits for d or until ctx ends, and reports whether ctx is still live.
func (p *pacer) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		return false
	case <-p.timer.C:
		return true
	}
}

func (p *pacer) close() {
	if p.timer != nil {
		p.timer.Stop()
	}
}
