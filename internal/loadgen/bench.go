package loadgen

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/inletdev/inlet/postgres"
)

// BenchConfig is what one inlet bench measures: the settings its flags give,
// checked by the command.
type BenchConfig struct {
	Scenario  *Scenario
	Devices   int // 0: the scenario's default
	Duration  time.Duration
	Count     int64
	Rate      float64
	SenderCPU int    // -1: no pinning
	Window    int    // ack: most unacknowledged messages per connection
	Target    string // an inlet serve already running (loopback), or "" to start one
	DB        string // database of the started server, or the target's; "": a temporary one (unknown for a target)
	ServerBin string // the inlet binary to start as server and baseline
	Baseline  bool   // the runs include a baseline (or plain) one, which needs ServerBin even with Target
	PerSecond bool   // sample the rates each second (RunReport.PerSecond)
	Progress  io.Writer
	// TLS: the devices connect to inlet serve's --tls port with this version
	// (tls.VersionTLS12 or 13; 0: no TLS), resuming sessions if TLSResume.
	// With Baseline, the same scenario first runs without TLS ("no-tls").
	TLSVersion uint16
	TLSResume  bool
	// Nodes is how many inlet serve the bench starts on DB (a PostgreSQL URL
	// when more than one), behind a round-robin TCP proxy; 0 or 1: one, no proxy.
	Nodes int
	// DBReset lets the bench drop and create again the schema of a PostgreSQL
	// DB that holds rows; without it such a database is refused.
	DBReset bool
}

// Bench runs the load of one inlet bench against each receiver in turn and
// measures it from the outside: the receiver's counters over HTTP, its database
// read-only, its CPU, memory and disk writes from /proc.
type Bench struct {
	cfg        BenchConfig
	scenario   *Scenario
	plain      *Scenario // acknowledged scenarios: compared with this one under --baseline
	devices    int
	bin        string // the inlet binary to start
	tmp        string // temporary directory, removed at the end
	db         string
	serverCPUs []int        // pin the started processes here, if set
	http       *http.Client // for /metrics and /counts
	progress   io.Writer    // progress lines, or nil
	target     string       // Target, resolved
	// TLS: the certificate the started server uses, and the roots that trust it.
	certDir, certFile, keyFile string
	roots                      *x509.CertPool
	pgUsed                     bool // a run has used the PostgreSQL DB: the rows there are the bench's
}

// NewBench resolves cfg once for every run: the open files limit, the target,
// the binary, the database.
func NewBench(ctx context.Context, cfg BenchConfig) (*Bench, error) {
	sc := cfg.Scenario
	b := &Bench{cfg: cfg, scenario: sc, devices: cfg.Devices, progress: cfg.Progress}
	var err error
	if sc.Plain != "" {
		if b.plain, err = Lookup(sc.Plain); err != nil {
			return nil, err
		}
	}
	if b.devices == 0 {
		b.devices = sc.DefaultDevices
	}
	if cfg.Nodes > 1 {
		switch {
		case !postgres.IsURL(cfg.DB):
			return nil, fmt.Errorf("--nodes %d: the nodes share one PostgreSQL database: give --db postgres://…", cfg.Nodes)
		case cfg.Target != "":
			return nil, fmt.Errorf("--nodes starts its own servers: not with --target")
		case sc.Transport != "tcp":
			return nil, fmt.Errorf("--nodes %d: the proxy in front of the nodes is TCP only, not --scenario %s", cfg.Nodes, sc.Name)
		}
	}
	// One file per connection here, and as many in a server started here (it
	// inherits the limit), plus what each needs besides.
	if _, _, err := RaiseOpenFiles(uint64(b.devices) + openFilesSpare); err != nil {
		return nil, fmt.Errorf("--devices %d: %w", b.devices, err)
	}
	if cfg.Target != "" {
		ap, err := ResolveLoopback(ctx, cfg.Target)
		if err != nil {
			return nil, fmt.Errorf("--target: %w", err)
		}
		b.target = ap.String()
	}
	if cfg.SenderCPU >= 0 {
		for c := range runtime.NumCPU() {
			if c != cfg.SenderCPU {
				b.serverCPUs = append(b.serverCPUs, c)
			}
		}
	}
	if cfg.TLSVersion != 0 && b.target == "" {
		if b.certDir, err = os.MkdirTemp("", "inlet-bench-tls-"); err != nil {
			return nil, fmt.Errorf("temporary directory: %w", err)
		}
		if b.certFile, b.keyFile, b.roots, err = writeTestCert(b.certDir); err != nil {
			os.RemoveAll(b.certDir)
			return nil, fmt.Errorf("tls: make a certificate: %w", err)
		}
	}
	if b.target == "" || cfg.Baseline {
		b.bin = cfg.ServerBin
		if b.bin == "" {
			if b.bin, err = os.Executable(); err != nil {
				return nil, fmt.Errorf("find the inlet binary: %w", err)
			}
		}
	}
	if b.target == "" {
		b.db = cfg.DB
		if b.db == "" {
			if b.tmp, err = os.MkdirTemp("", "inlet-bench-"); err != nil {
				return nil, fmt.Errorf("temporary directory: %w", err)
			}
			b.db = filepath.Join(b.tmp, "bench.db")
		}
	} else {
		b.db = cfg.DB // may be empty: then what the target stored is unknown
	}
	b.http = &http.Client{
		Timeout: 5 * time.Second,
		// No gzip: the server would spend CPU compressing the scrapes it is measured on.
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 2},
	}
	return b, nil
}

// Devices is the number of emulated devices, the scenario's default resolved.
func (b *Bench) Devices() int { return b.devices }

// Plain is the plain scenario an acknowledged one is compared with, or nil.
func (b *Bench) Plain() *Scenario { return b.plain }

// Close removes the temporary files.
func (b *Bench) Close() {
	b.http.CloseIdleConnections()
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
	if b.certDir != "" {
		os.RemoveAll(b.certDir)
	}
}

// errUnknown stands for a number that cannot be read (a server not started here).
var errUnknown = errors.New("unknown")

// openFilesSpare is what a process needs open besides one file per device:
// listeners, the database and its WAL, HTTP connections, the runtime's own.
const openFilesSpare = 256

// target is what one run sends to: inlet serve or the baseline started here, or
// an inlet already running (--target).
type target struct {
	addr      string
	proc      *child // nil for --target
	countWord string // what progress counts: "committed" or "counted"
	// progress returns the messages stored (or counted) so far and the messages
	// received; nil when that cannot be known (--target without --db).
	progress func(ctx context.Context) (stored, received int64, err error)
	// final records what only the receiver knows, just before it is stopped.
	final func(ctx context.Context, r *RunReport) error
	// stored counts what was stored, once the receiver has stopped.
	stored func(ctx context.Context) (int64, error)
	// gauges reads the server's goroutines, open TCP connections and Go memory;
	// nil when it cannot be known (the baseline, --target).
	gauges func(ctx context.Context) (serverGauges, error)
	// procs are every process started for the run (proc is the first); with
	// more than one, proxy spreads the devices' connections over them.
	procs []*child
	proxy *proxy
}

// killAll ends the proxy and every process at once.
func (t *target) killAll() {
	if t.proxy != nil {
		t.proxy.close()
	}
	for _, p := range t.procs {
		p.kill()
	}
}

// stopAll closes the proxy (the devices are done), then stops every process.
func (t *target) stopAll(timeout time.Duration) error {
	if t.proxy != nil {
		t.proxy.close()
	}
	var errs []error
	for _, p := range t.procs {
		errs = append(errs, p.stop(timeout))
	}
	return errors.Join(errs...)
}

// dead returns a process that has exited, or nil.
func (t *target) dead() *child {
	for _, p := range t.procs {
		if p.hasExited() {
			return p
		}
	}
	return nil
}

// readProc adds up the processes' CPU time and memory (peak: the sum of each one's peak).
func (t *target) readProc() (ProcStat, error) {
	var sum ProcStat
	for _, p := range t.procs {
		ps, err := ReadProc(p.pid)
		if err != nil {
			return sum, fmt.Errorf("%s: %w", p.name, err)
		}
		sum.CPU += ps.CPU
		sum.PeakRSS += ps.PeakRSS
		sum.RSS += ps.RSS
	}
	return sum, nil
}

// writeBytes adds up the bytes the processes wrote to storage.
func (t *target) writeBytes() (int64, error) {
	var sum int64
	for _, p := range t.procs {
		n, err := ReadWriteBytes(p.pid)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// Run sends the load to one receiver and measures it: "inlet", "baseline" (the
// bare receiver), "plain" (inlet under the plain scenario an acknowledged one is
// compared with) or "no-tls" (inlet under the same scenario without TLS).
func (b *Bench) Run(ctx context.Context, name string) (r RunReport, err error) {
	sc := b.scenario
	if name == "plain" {
		sc = b.plain
	}
	var tc *TLSConfig
	if b.cfg.TLSVersion != 0 && name == "inlet" {
		tc = &TLSConfig{Version: b.cfg.TLSVersion, Resume: b.cfg.TLSResume, Roots: b.roots}
		r.TLS = TLSVersionName(tc.Version)
	}
	r.Target, r.Scenario, r.Devices = name, sc.Name, b.devices
	var t *target
	switch {
	case name == "baseline":
		t, err = b.startBaseline(ctx)
	case b.target != "" && name == "no-tls":
		return r, errors.New("no-tls: --target is the TLS port of one server: run without --baseline")
	case b.target != "":
		t, err = b.external(ctx)
	default:
		db := b.db
		if name != "inlet" && b.tmp != "" {
			db = filepath.Join(b.tmp, name+".db") // the measured run starts from an empty database too
		}
		t, err = b.startInlet(ctx, sc, db, tc != nil)
	}
	if err != nil {
		return r, err
	}
	if t.proc != nil {
		defer t.killAll()
		r.ServerCPUs = t.proc.pinned
	}
	r.Addr = t.addr
	addr, err := ResolveLoopback(ctx, t.addr)
	if err != nil {
		return r, err
	}
	var before ProcStat
	if t.proc != nil {
		if before, err = t.readProc(); err != nil {
			return r, err
		}
	}
	writesBefore, writesErr := int64(0), errUnknown
	if t.proc != nil {
		writesBefore, writesErr = t.writeBytes()
	}
	var gen *Generator
	cfg := Config{
		Scenario:  sc,
		Target:    addr,
		Devices:   b.devices,
		Duration:  b.cfg.Duration,
		Count:     b.cfg.Count,
		Rate:      b.cfg.Rate,
		SenderCPU: b.cfg.SenderCPU,
		Window:    b.cfg.Window,
		TLS:       tc,
	}
	if sc.Idle {
		ir := &IdleReport{HoldS: b.cfg.Duration.Seconds()}
		r.Idle = ir
		if t.gauges != nil {
			g, err := t.gauges(ctx)
			if err != nil {
				return r, err
			}
			ir.before = g
			ir.GoroutinesBefore = &g.Goroutines
		}
		cfg.OnIdle = func(ctx context.Context, st IdleStats) error {
			return b.measureIdle(ctx, t, gen, before, st, ir)
		}
	}
	gen, err = New(cfg)
	if err != nil {
		return r, err
	}

	// The load stops early when the receiver dies; progress lines stop with the load.
	loadCtx, cancel := context.WithCancel(ctx)
	progCtx, stopProgress := context.WithCancel(loadCtx)
	var wg sync.WaitGroup
	defer func() {
		stopProgress()
		cancel()
		wg.Wait()
	}()
	for _, p := range t.procs {
		wg.Go(func() {
			select {
			case <-p.exited:
				cancel()
			case <-loadCtx.Done():
			}
		})
	}
	start := time.Now()
	if b.progress != nil {
		wg.Go(func() { b.showProgress(progCtx, name, gen, t, start) })
	}
	var samples []RateSample
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	if b.cfg.PerSecond {
		var swg sync.WaitGroup
		swg.Go(func() { samples = sampleRates(sampleCtx, gen, t, start, sc.Acked) })
		defer func() {
			stopSampling()
			swg.Wait()
			r.PerSecond = samples
		}()
	}
	res, err := gen.Run(loadCtx)
	loadEnd := time.Now()
	stopProgress()
	if p := t.dead(); p != nil {
		return r, p.exitError("during the load")
	}
	if err != nil {
		return r, err
	}
	r.Sent, r.SendErrors, r.FirstSendError = res.Sent, res.Errors, res.FirstError
	r.LoadS = res.Elapsed.Seconds()
	r.SentPerS = perSecond(res.Sent, res.Elapsed)
	if sc.Acked {
		// Elapsed runs until the last device read its last ACK.
		acked, rate := res.Acked, perSecond(res.Acked, res.Elapsed)
		r.Acked, r.AckedPerS = &acked, &rate
		l := res.Latency
		r.Latency = &LatencyReport{Samples: l.Samples, P50: ms(l.P50), P90: ms(l.P90), P99: ms(l.P99), Max: ms(l.Max)}
	}
	if tc != nil {
		hs, resumed, rate := res.Handshakes, res.Resumed, perSecond(res.Handshakes, res.Elapsed)
		r.TLSHandshakes, r.TLSResumed, r.TLSHandshakesPerS = &hs, &resumed, &rate
	}

	busy := res.Elapsed
	if t.progress != nil {
		quiet := drainQuiet
		if sc.Transport == "tcp" {
			quiet = drainQuietTCP
		}
		last, err := waitDrain(ctx, t, res.Sent, loadEnd, quiet)
		if err != nil {
			if p := t.dead(); p != nil {
				return r, p.exitError("while committing")
			}
			return r, err
		}
		r.DrainS = last.Sub(loadEnd).Seconds()
		busy += last.Sub(loadEnd)
	}
	stopSampling()
	if t.proc != nil {
		after, err := t.readProc()
		if err != nil {
			return r, err
		}
		cpu := (after.CPU - before.CPU).Seconds()
		rss := float64(after.PeakRSS) / (1 << 20)
		r.CPUS, r.PeakRSSMB = &cpu, &rss
		if writesErr == nil {
			if w, err := t.writeBytes(); err == nil {
				w -= writesBefore
				r.DiskWriteBytes = &w
			}
		}
	}
	if t.final != nil {
		if err := t.final(ctx, &r); err != nil {
			return r, err
		}
	}
	if t.proc != nil {
		if err := t.stopAll(15 * time.Second); err != nil {
			return r, err
		}
	}
	if t.stored != nil {
		n, err := t.stored(ctx)
		if err != nil {
			return r, err
		}
		loss := r.Sent - n
		rate := perSecond(n, busy)
		r.Stored, r.Loss, r.StoredPerS = &n, &loss, &rate
		if r.CPUS != nil && n > 0 {
			us := *r.CPUS * 1e6 / float64(n)
			r.CPUMicrosPerMsg = &us
		}
		if r.DiskWriteBytes != nil && n > 0 {
			per := float64(*r.DiskWriteBytes) / float64(n)
			r.DiskBytesPerMsg = &per
		}
	}
	return r, nil
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

// RateSample is one second of a run (--plot): messages per second sent, stored
// (committed, or counted by the baseline) and, for acknowledged scenarios,
// acknowledged, over the second ending at T.
type RateSample struct {
	T      float64  `json:"t_s"`
	Sent   float64  `json:"sent"`
	Stored *float64 `json:"stored,omitempty"` // unknown for --target without --db
	Acked  *float64 `json:"acked,omitempty"`
}

// sampleRates reads the counts once a second from start until ctx ends (after
// the drain) and returns the rates between samples.
func sampleRates(ctx context.Context, gen *Generator, t *target, start time.Time, isAcked bool) []RateSample {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var out []RateSample
	prevT, prevSent, prevStored, prevAcked := 0.0, int64(0), int64(0), int64(0)
	for {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		now := time.Since(start).Seconds()
		sent, acked := gen.Sent(), gen.Acked()
		dt := now - prevT
		s := RateSample{T: now, Sent: float64(sent-prevSent) / dt}
		if t.progress != nil {
			if n, _, err := t.progress(ctx); err == nil {
				v := float64(n-prevStored) / dt
				s.Stored, prevStored = &v, n
			}
		}
		if isAcked {
			v := float64(acked-prevAcked) / dt
			s.Acked = &v
		}
		out = append(out, s)
		prevT, prevSent, prevAcked = now, sent, acked
	}
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// measureIdle runs when every connection of an idle scenario is open and has
// been held quiet: once the receiver has stored (or counted) everything sent, it
// reads the receiver's resident memory and, for inlet, its goroutines and open
// connections.
func (b *Bench) measureIdle(ctx context.Context, t *target, gen *Generator, before ProcStat,
	st IdleStats, ir *IdleReport) error {
	ir.Conns, ir.Failed = st.Open, st.Failed
	if t.progress != nil {
		sent := gen.Sent()
		deadline := time.Now().Add(idleSettle)
		for {
			s, _, err := t.progress(ctx)
			if err != nil {
				return fmt.Errorf("idle: %w", err)
			}
			if s >= sent {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("idle: %d of the %d first messages stored after %s", s, sent, idleSettle)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(drainPoll):
			}
		}
	}
	if t.proc != nil {
		ps, err := t.readProc()
		if err != nil {
			return err
		}
		rssBefore, rssIdle := float64(before.RSS)/(1<<20), float64(ps.RSS)/(1<<20)
		ir.RSSBeforeMB, ir.RSSIdleMB = &rssBefore, &rssIdle
		if st.Open > 0 {
			kb := float64(ps.RSS-before.RSS) / 1024 / float64(st.Open)
			ir.KBPerConn = &kb
		}
	}
	if t.gauges != nil {
		g, err := t.gauges(ctx)
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		ir.GoroutinesIdle, ir.ServerConns = &g.Goroutines, &g.Conns
		if ir.GoroutinesBefore != nil && st.Open > 0 {
			n := float64(st.Open)
			per := float64(g.Goroutines-ir.before.Goroutines) / n
			stack := float64(g.StackBytes-ir.before.StackBytes) / 1024 / n
			heap := float64(g.HeapBytes-ir.before.HeapBytes) / 1024 / n
			ir.GoroutinesPerConn, ir.StackKBPerConn, ir.HeapKBPerConn = &per, &stack, &heap
		}
	}
	return nil
}

// serverGauges is what the idle scenarios read from inlet serve's /metrics.
type serverGauges struct {
	Goroutines, Conns     int64
	StackBytes, HeapBytes int64
}

// idleSettle bounds the wait, in the idle scenarios, for the first messages to
// be stored before the server is measured.
const idleSettle = 30 * time.Second

// Waiting for the receiver to finish: done when it has everything that was sent,
// or when its counts have stood still for drainQuiet (drainQuietTCP over TCP; a UDP load that lost
// datagrams never gets there), or after drainLimit.
const (
	drainPoll  = 50 * time.Millisecond
	drainQuiet = time.Second
	// Over TCP everything sent arrives unless refused, and a server starved of
	// CPU can stand still for more than a second in one long commit, its
	// readers stopped behind the full queue: a drain cut short there stopped
	// the server with lines still unread (counted as lost).
	drainQuietTCP = 10 * time.Second
	drainLimit    = 2 * time.Minute
)

// waitDrain returns when the receiver last made progress.
func waitDrain(ctx context.Context, t *target, sent int64, loadEnd time.Time, quiet time.Duration) (time.Time, error) {
	last := loadEnd
	prevS, prevR := int64(-1), int64(-1)
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		s, r, err := t.progress(ctx)
		if err != nil {
			return last, fmt.Errorf("wait for the last messages: %w", err)
		}
		now := time.Now()
		if s != prevS || r != prevR {
			prevS, prevR, last = s, r, now
		}
		if s >= sent || now.Sub(last) >= quiet || now.Sub(loadEnd) >= drainLimit {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-tick.C:
		}
	}
}

func (b *Bench) showProgress(ctx context.Context, name string, gen *Generator, t *target, start time.Time) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var prev int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sent := gen.Sent()
		line := fmt.Sprintf("%-8s %4.0fs  sent %d (%d/s)", name, time.Since(start).Seconds(), sent, sent-prev)
		prev = sent
		if name == "inlet" && b.scenario.Acked {
			line += fmt.Sprintf("  acked %d", gen.Acked())
		}
		if t.progress != nil {
			if s, _, err := t.progress(ctx); err == nil {
				line += fmt.Sprintf("  %s %d", t.countWord, s)
			}
		}
		fmt.Fprintln(b.progress, line)
	}
}
