package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/inletdev/inlet/internal/loadgen"
	_ "modernc.org/sqlite" // the "sqlite" driver, to count stored rows
)

// benchConfig is everything inlet bench can be told.
type benchConfig struct {
	Scenario  string
	Devices   int
	Duration  time.Duration
	Count     int64
	Rate      float64
	Baseline  bool
	JSON      bool
	Target    string
	DB        string
	SenderCPU int
	ServerBin string
	Window    int
	windowSet bool   // --window given, which only the ack scenario takes
	Plot      string // --plot: write the per-second rates here as SVG
}

func benchFlags(stderr io.Writer) (*benchConfig, *flag.FlagSet) {
	var sc strings.Builder
	for _, s := range loadgen.Scenarios() {
		devs := "devices"
		if s.DefaultDevices == 1 {
			devs = "device"
		}
		fmt.Fprintf(&sc, "\n  %-9s %s (default: %d %s)", s.Name, s.Summary, s.DefaultDevices, devs)
	}
	fs := newFlags("bench", "Measure inlet end to end: start inlet serve on loopback, send a scenario's load, wait until\n"+
		"everything received is committed, then report what was sent, what is durably stored, the loss,\n"+
		"the stored rate, the server's CPU time per message and its peak memory.\n"+
		"Scenarios:"+sc.String()+"\n"+
		"With --baseline the same load first goes to a bare receiver that only counts lines and datagrams,\n"+
		"then to inlet, and the table ends with inlet/baseline ratios. Sends to loopback addresses only.\n"+
		"The acknowledged scenarios (ack, ack-cpm) also report the messages acknowledged, the rate of acks and\n"+
		"the ack latency (p50/p90/p99/max): for ack from writing a message to reading the ACK that covers it,\n"+
		"for ack-cpm from starting to connect to reading the ACK. The bare receiver does not speak INLET/1,\n"+
		"so for them --baseline compares with plain inlet instead: the matching plain scenario (stream for\n"+
		"ack, tutorial for ack-cpm) first runs against inlet with the same devices, duration, count and rate,\n"+
		"and the table ends with inlet/plain ratios (acked/s: acked msgs/s over the plain run's stored msgs/s).\n"+
		"The idle scenarios (idle, idle-ack) open every device's connection, hold them all open and quiet for\n"+
		"--duration, and report the server's resident memory per connection (VmRSS with all of them idle, less\n"+
		"VmRSS before the first, over the connections), then send one more message on each (idle-ack: and wait\n"+
		"for its ACK) to show every one is still served. The open files limit is raised to the hard limit, which\n"+
		"the started server inherits; --devices 10000 needs about 10,300 (ulimit -Hn).", stderr)
	bc := &benchConfig{}
	fs.StringVar(&bc.Scenario, "scenario", "tutorial", "tutorial, stream, udp, ack, ack-cpm, idle or idle-ack")
	fs.IntVar(&bc.Devices, "devices", 0, "emulated devices, each with its own connection or socket and loopback address (0: the scenario's default)")
	fs.DurationVar(&bc.Duration, "duration", 10*time.Second, "how long to send; idle, idle-ack: how long to hold the connections open and quiet")
	fs.Int64Var(&bc.Count, "count", 0, "also stop after this many messages in all (0: no bound)")
	fs.Float64Var(&bc.Rate, "rate", 0, "messages per second per device (0: as fast as possible)")
	fs.BoolVar(&bc.Baseline, "baseline", false, "also run the load against a bare receiver that stores nothing, and print inlet/baseline ratios;\n"+
		"ack, ack-cpm: run the plain scenario (stream, tutorial) against inlet instead, and print inlet/plain ratios")
	fs.BoolVar(&bc.JSON, "json", false, "print one JSON object with all the numbers instead of the table")
	fs.StringVar(&bc.Target, "target", "", "send to an inlet serve already running at this TCP or UDP address (loopback only) instead of starting one")
	fs.StringVar(&bc.DB, "db", "", "database of the started server, kept afterwards (default: a temporary file);\n"+
		"with --target, the target's database, to count what it stored")
	fs.IntVar(&bc.SenderCPU, "udp-sender-cpu", -1, "udp: pin the sender threads to this CPU and the started server to the other CPUs (-1: no pinning)")
	fs.IntVar(&bc.Window, "window", loadgen.DefaultWindow, "ack: most messages one connection may have sent and not yet seen acknowledged")
	fs.StringVar(&bc.Plot, "plot", "", "write messages/s sent and stored (acked, for ack scenarios), sampled each second over the run,\n"+
		"as an SVG chart to this file")
	fs.StringVar(&bc.ServerBin, "server-bin", "", "inlet binary to start as server and baseline (default: this one; for tests and comparing builds)")
	return bc, fs
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	bc, fs := benchFlags(stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) { bc.windowSet = bc.windowSet || f.Name == "window" })
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := newBench(ctx, bc, stderr)
	if err != nil {
		return err
	}
	defer b.close()

	rep := benchReport{
		Scenario:     b.scenario.Name,
		Transport:    b.scenario.Transport,
		Devices:      b.devices,
		DurationS:    bc.Duration.Seconds(),
		Count:        bc.Count,
		RatePerDev:   bc.Rate,
		UDPSenderCPU: bc.SenderCPU,
		Order:        "inlet",
	}
	if b.scenario.Name == "ack" {
		rep.Window = bc.Window
	}
	runs := []string{"inlet"}
	switch {
	case bc.Baseline && b.plain != nil:
		runs = []string{"plain", "inlet"}
		rep.Plain = b.plain.Name
		rep.Order = "plain inlet (" + b.plain.Name + "), then inlet (" + b.scenario.Name + ")"
	case bc.Baseline:
		runs = []string{"baseline", "inlet"}
		rep.Order = "baseline, then inlet"
	}
	for _, name := range runs {
		r, err := b.runOne(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("bench %s: interrupted", name)
			}
			return fmt.Errorf("bench %s: %w", name, err)
		}
		rep.Runs = append(rep.Runs, r)
	}
	rep.Ratio = ratios(rep.Runs)
	if bc.Plot != "" {
		if err := writePlot(bc.Plot, &rep); err != nil {
			return err
		}
	}
	if bc.JSON {
		return json.NewEncoder(stdout).Encode(&rep)
	}
	return printBench(stdout, &rep)
}

// bench is one invocation of inlet bench: the settings resolved once for all runs.
type bench struct {
	cfg        *benchConfig
	scenario   *loadgen.Scenario
	plain      *loadgen.Scenario // acknowledged scenarios: compared with this one under --baseline
	devices    int
	bin        string // the inlet binary to start
	tmp        string // temporary directory, removed at the end
	db         string
	serverCPUs []int        // pin the started processes here, if set
	http       *http.Client // for /metrics and /counts
	progress   io.Writer    // progress lines, nil when stderr is no terminal
	target     string       // --target, resolved
}

func newBench(ctx context.Context, bc *benchConfig, stderr io.Writer) (*bench, error) {
	sc, err := loadgen.Lookup(bc.Scenario)
	if err != nil {
		return nil, fmt.Errorf("--scenario: %w", err)
	}
	b := &bench{cfg: bc, scenario: sc, devices: bc.Devices}
	switch {
	case bc.Devices < 0 || bc.Devices > loadgen.MaxDevices:
		return nil, fmt.Errorf("--devices %d: want 1 to %d (0: the scenario's default)", bc.Devices, loadgen.MaxDevices)
	case bc.Duration <= 0:
		return nil, errors.New("--duration must be positive: the benchmark always stops by itself")
	case bc.Count < 0:
		return nil, errors.New("--count must not be negative")
	case bc.Rate < 0 || math.IsInf(bc.Rate, 0) || math.IsNaN(bc.Rate):
		return nil, errors.New("--rate must be a positive number of messages per second, or 0")
	case bc.SenderCPU >= 0 && sc.Transport != "udp":
		return nil, fmt.Errorf("--udp-sender-cpu applies to --scenario udp only")
	case bc.SenderCPU >= 0 && runtime.GOOS != "linux":
		return nil, fmt.Errorf("--udp-sender-cpu needs Linux")
	case bc.SenderCPU >= runtime.NumCPU() || bc.SenderCPU < -1:
		return nil, fmt.Errorf("--udp-sender-cpu %d: want 0 to %d, or -1", bc.SenderCPU, runtime.NumCPU()-1)
	case bc.SenderCPU >= 0 && runtime.NumCPU() < 2:
		return nil, errors.New("--udp-sender-cpu needs at least 2 CPUs: one to send, one to receive")
	case bc.Window < 1 || bc.Window > loadgen.MaxWindow:
		return nil, fmt.Errorf("--window %d: want 1 to %d", bc.Window, loadgen.MaxWindow)
	case bc.windowSet && sc.Name != "ack":
		return nil, fmt.Errorf("--window applies to --scenario ack only")
	case sc.Idle && (bc.Count > 0 || bc.Rate > 0):
		return nil, fmt.Errorf("--count and --rate do not apply to --scenario %s: each device sends two messages", sc.Name)
	}
	if sc.Plain != "" {
		if b.plain, err = loadgen.Lookup(sc.Plain); err != nil {
			return nil, err
		}
	}
	if b.devices == 0 {
		b.devices = sc.DefaultDevices
	}
	// One file per connection here, and as many in a server started here (it
	// inherits the limit), plus what each needs besides.
	if _, _, err := loadgen.RaiseOpenFiles(uint64(b.devices) + openFilesSpare); err != nil {
		return nil, fmt.Errorf("--devices %d: %w", b.devices, err)
	}
	if bc.Target != "" {
		ap, err := loadgen.ResolveLoopback(ctx, bc.Target)
		if err != nil {
			return nil, fmt.Errorf("--target: %w", err)
		}
		b.target = ap.String()
	}
	if bc.SenderCPU >= 0 {
		for c := range runtime.NumCPU() {
			if c != bc.SenderCPU {
				b.serverCPUs = append(b.serverCPUs, c)
			}
		}
	}
	if b.target == "" || bc.Baseline {
		b.bin = bc.ServerBin
		if b.bin == "" {
			if b.bin, err = os.Executable(); err != nil {
				return nil, fmt.Errorf("find the inlet binary: %w", err)
			}
		}
	}
	if b.target == "" {
		b.db = bc.DB
		if b.db == "" {
			if b.tmp, err = os.MkdirTemp("", "inlet-bench-"); err != nil {
				return nil, fmt.Errorf("temporary directory: %w", err)
			}
			b.db = filepath.Join(b.tmp, "bench.db")
		}
	} else {
		b.db = bc.DB // may be empty: then what the target stored is unknown
	}
	b.http = &http.Client{
		Timeout: 5 * time.Second,
		// No gzip: the server would spend CPU compressing the scrapes it is measured on.
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 2},
	}
	if isTerminal(stderr) {
		b.progress = stderr
	}
	return b, nil
}

func (b *bench) close() {
	b.http.CloseIdleConnections()
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
}

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
	final func(ctx context.Context, r *runReport) error
	// stored counts what was stored, once the receiver has stopped.
	stored func(ctx context.Context) (int64, error)
	// gauges reads the server's goroutines, open TCP connections and Go memory;
	// nil when it cannot be known (the baseline, --target).
	gauges func(ctx context.Context) (serverGauges, error)
}

// runOne sends the load to one receiver and measures it.
// "plain" is inlet under the plain scenario an acknowledged one is compared with.
func (b *bench) runOne(ctx context.Context, name string) (r runReport, err error) {
	sc := b.scenario
	if name == "plain" {
		sc = b.plain
	}
	r = runReport{Target: name, Scenario: sc.Name, Devices: b.devices}
	var t *target
	switch {
	case name == "baseline":
		t, err = b.startBaseline(ctx)
	case b.target != "":
		t, err = b.external(ctx)
	default:
		db := b.db
		if name == "plain" && b.tmp != "" {
			db = filepath.Join(b.tmp, "plain.db") // the measured run starts from an empty database too
		}
		t, err = b.startInlet(ctx, sc, db)
	}
	if err != nil {
		return r, err
	}
	if t.proc != nil {
		defer t.proc.kill()
		r.ServerCPUs = t.proc.pinned
	}
	r.Addr = t.addr
	addr, err := loadgen.ResolveLoopback(ctx, t.addr)
	if err != nil {
		return r, err
	}
	var before loadgen.ProcStat
	if t.proc != nil {
		if before, err = loadgen.ReadProc(t.proc.pid); err != nil {
			return r, fmt.Errorf("%s: %w", t.proc.name, err)
		}
	}
	var gen *loadgen.Generator
	cfg := loadgen.Config{
		Scenario:  sc,
		Target:    addr,
		Devices:   b.devices,
		Duration:  b.cfg.Duration,
		Count:     b.cfg.Count,
		Rate:      b.cfg.Rate,
		SenderCPU: b.cfg.SenderCPU,
		Window:    b.cfg.Window,
	}
	if sc.Idle {
		ir := &idleReport{HoldS: b.cfg.Duration.Seconds()}
		r.Idle = ir
		if t.gauges != nil {
			g, err := t.gauges(ctx)
			if err != nil {
				return r, err
			}
			ir.before = g
			ir.GoroutinesBefore = &g.Goroutines
		}
		cfg.OnIdle = func(ctx context.Context, st loadgen.IdleStats) error {
			return b.measureIdle(ctx, t, gen, before, st, ir)
		}
	}
	gen, err = loadgen.New(cfg)
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
	if t.proc != nil {
		wg.Go(func() {
			select {
			case <-t.proc.exited:
				cancel()
			case <-loadCtx.Done():
			}
		})
	}
	start := time.Now()
	if b.progress != nil {
		wg.Go(func() { b.showProgress(progCtx, name, gen, t, start) })
	}
	var samples []rateSample
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	if b.cfg.Plot != "" {
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
	if t.proc != nil && t.proc.hasExited() {
		return r, t.proc.exitError("during the load")
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
		r.Latency = &latencyReport{Samples: l.Samples, P50: ms(l.P50), P90: ms(l.P90), P99: ms(l.P99), Max: ms(l.Max)}
	}

	busy := res.Elapsed
	if t.progress != nil {
		last, err := waitDrain(ctx, t, res.Sent, loadEnd)
		if err != nil {
			if t.proc != nil && t.proc.hasExited() {
				return r, t.proc.exitError("while committing")
			}
			return r, err
		}
		r.DrainS = last.Sub(loadEnd).Seconds()
		busy += last.Sub(loadEnd)
	}
	stopSampling()
	if t.proc != nil {
		after, err := loadgen.ReadProc(t.proc.pid)
		if err != nil {
			return r, fmt.Errorf("%s: %w", t.proc.name, err)
		}
		cpu := (after.CPU - before.CPU).Seconds()
		rss := float64(after.PeakRSS) / (1 << 20)
		r.CPUS, r.PeakRSSMB = &cpu, &rss
	}
	if t.final != nil {
		if err := t.final(ctx, &r); err != nil {
			return r, err
		}
	}
	if t.proc != nil {
		if err := t.proc.stop(15 * time.Second); err != nil {
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
	}
	return r, nil
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

// rateSample is one second of a run (--plot): messages per second sent, stored
// (committed, or counted by the baseline) and, for acknowledged scenarios,
// acknowledged, over the second ending at T.
type rateSample struct {
	T      float64  `json:"t_s"`
	Sent   float64  `json:"sent"`
	Stored *float64 `json:"stored,omitempty"` // unknown for --target without --db
	Acked  *float64 `json:"acked,omitempty"`
}

// sampleRates reads the counts once a second from start until ctx ends (after
// the drain) and returns the rates between samples.
func sampleRates(ctx context.Context, gen *loadgen.Generator, t *target, start time.Time, isAcked bool) []rateSample {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var out []rateSample
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
		s := rateSample{T: now, Sent: float64(sent-prevSent) / dt}
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

// writePlot writes every run's per-second rates as an SVG chart.
func writePlot(path string, rep *benchReport) error {
	title := fmt.Sprintf("inlet bench: %s, %d devices, %gs", rep.Scenario, rep.Devices, rep.DurationS)
	if rep.RatePerDev > 0 {
		title += fmt.Sprintf(", %g msgs/s per device", rep.RatePerDev)
	}
	if rep.Window > 0 {
		title += fmt.Sprintf(", window %d", rep.Window)
	}
	p := loadgen.Plot{Title: title, XLabel: "seconds since the start of the load", YLabel: "messages per second"}
	for _, r := range rep.Runs {
		prefix := ""
		if len(rep.Runs) > 1 {
			prefix = r.Target + " " + r.Scenario + " "
		}
		var sent, stored, acked []loadgen.Point
		for _, s := range r.PerSecond {
			sent = append(sent, loadgen.Point{X: s.T, Y: s.Sent})
			if s.Stored != nil {
				stored = append(stored, loadgen.Point{X: s.T, Y: *s.Stored})
			}
			if s.Acked != nil {
				acked = append(acked, loadgen.Point{X: s.T, Y: *s.Acked})
			}
		}
		p.Series = append(p.Series, loadgen.Series{Name: prefix + "sent", Points: sent})
		word := "stored"
		if r.Target == "baseline" {
			word = "counted"
		}
		p.Series = append(p.Series, loadgen.Series{Name: prefix + word, Points: stored, Dashed: true})
		if r.Acked != nil {
			p.Series = append(p.Series, loadgen.Series{Name: prefix + "acked", Points: acked})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if err := p.WriteSVG(f); err != nil {
		f.Close()
		return fmt.Errorf("--plot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	return nil
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
func (b *bench) measureIdle(ctx context.Context, t *target, gen *loadgen.Generator, before loadgen.ProcStat,
	st loadgen.IdleStats, ir *idleReport) error {
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
		ps, err := loadgen.ReadProc(t.proc.pid)
		if err != nil {
			return fmt.Errorf("%s: %w", t.proc.name, err)
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

// startInlet starts inlet serve for scenario sc on free loopback ports, with database db.
func (b *bench) startInlet(ctx context.Context, sc *loadgen.Scenario, db string) (*target, error) {
	before, err := rowsBefore(ctx, db)
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", db}
	if sc.Idle {
		// The held connections must outlive the hold; --max-conns (10,000 by
		// default) must take every device.
		args = append(args, "--idle-timeout", (b.cfg.Duration + 2*time.Minute).String(),
			"--max-conns", strconv.Itoa(max(10000, b.devices+16)))
	}
	p, err := startChild(ctx, "inlet serve", b.bin, args, b.serverCPUs)
	if err != nil {
		return nil, err
	}
	t := &target{proc: p, addr: p.ready.TCP, countWord: "committed"}
	if sc.Transport == "udp" {
		t.addr = p.ready.UDP
	}
	if t.addr == "" || p.ready.HTTP == "" {
		p.kill()
		return nil, fmt.Errorf("inlet serve: ready line without %s and http addresses", sc.Transport)
	}
	metricsURL := "http://" + p.ready.HTTP + "/metrics"
	t.progress = func(ctx context.Context) (int64, int64, error) {
		m, err := b.scrape(ctx, metricsURL)
		if err != nil {
			return 0, 0, err
		}
		return m.Sum("inlet_messages_committed_total"), m.Sum("inlet_messages_received_total"), nil
	}
	t.gauges = func(ctx context.Context) (serverGauges, error) {
		m, err := b.scrape(ctx, metricsURL)
		if err != nil {
			return serverGauges{}, err
		}
		return serverGauges{Goroutines: m.Sum("go_goroutines"), Conns: m.Sum("inlet_connections_open"),
			StackBytes: m.Sum("go_memstats_stack_inuse_bytes"), HeapBytes: m.Sum("go_memstats_heap_inuse_bytes")}, nil
	}
	t.final = func(ctx context.Context, r *runReport) error {
		m, err := b.scrape(ctx, metricsURL)
		if err != nil {
			return err
		}
		drops := m.Sum("inlet_udp_kernel_drops_total")
		r.KernelDrops = &drops
		r.Rejected = m.ByLabel("inlet_rejected_total", "reason")
		return nil
	}
	t.stored = func(ctx context.Context) (int64, error) {
		n, err := countRows(ctx, db)
		return n - before, err
	}
	return t, nil
}

// startBaseline starts the bare receiver (inlet bench-baseline).
func (b *bench) startBaseline(ctx context.Context) (*target, error) {
	p, err := startChild(ctx, "inlet bench-baseline", b.bin, []string{"bench-baseline",
		"--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0"}, b.serverCPUs)
	if err != nil {
		return nil, err
	}
	tr := b.scenario.Transport
	t := &target{proc: p, addr: p.ready.TCP, countWord: "counted"}
	if tr == "udp" {
		t.addr = p.ready.UDP
	}
	if t.addr == "" || p.ready.HTTP == "" {
		p.kill()
		return nil, fmt.Errorf("inlet bench-baseline: ready line without %s and http addresses", tr)
	}
	countsURL := "http://" + p.ready.HTTP + "/counts"
	t.progress = func(ctx context.Context) (int64, int64, error) {
		c, err := b.counts(ctx, countsURL)
		n := c.Messages(tr)
		return n, n, err
	}
	t.final = func(ctx context.Context, r *runReport) error {
		c, err := b.counts(ctx, countsURL)
		if tr == "udp" {
			r.KernelDrops = &c.UDPKernelDrops
		}
		return err
	}
	// The counts it prints when it stops include every byte it read.
	t.stored = func(ctx context.Context) (int64, error) {
		var c loadgen.Counts
		line := p.out.lastLine()
		if err := json.Unmarshal(line, &c); err != nil {
			return 0, fmt.Errorf("inlet bench-baseline: final counts %q: %w", line, err)
		}
		return c.Messages(tr), nil
	}
	return t, nil
}

// external is an inlet serve already running at --target. Only its database, if
// named, tells what it stored.
func (b *bench) external(ctx context.Context) (*target, error) {
	t := &target{addr: b.target, countWord: "stored"}
	if b.db == "" {
		return t, nil
	}
	before, err := countRows(ctx, b.db)
	if err != nil {
		return nil, err
	}
	t.progress = func(ctx context.Context) (int64, int64, error) {
		n, err := countRows(ctx, b.db)
		return n - before, n - before, err
	}
	t.stored = func(ctx context.Context) (int64, error) {
		n, err := countRows(ctx, b.db)
		return n - before, err
	}
	return t, nil
}

// Waiting for the receiver to finish: done when it has everything that was sent,
// or when its counts have stood still for drainQuiet (a UDP load that lost
// datagrams never gets there), or after drainLimit.
const (
	drainPoll  = 50 * time.Millisecond
	drainQuiet = time.Second
	drainLimit = 2 * time.Minute
)

// waitDrain returns when the receiver last made progress.
func waitDrain(ctx context.Context, t *target, sent int64, loadEnd time.Time) (time.Time, error) {
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
		if s >= sent || now.Sub(last) >= drainQuiet || now.Sub(loadEnd) >= drainLimit {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-tick.C:
		}
	}
}

func (b *bench) showProgress(ctx context.Context, name string, gen *loadgen.Generator, t *target, start time.Time) {
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

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// get fetches a small document from a receiver's HTTP address.
func (b *bench) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: %s", url, resp.Status)
	}
	return body, nil
}

func (b *bench) counts(ctx context.Context, url string) (loadgen.Counts, error) {
	var c loadgen.Counts
	body, err := b.get(ctx, url)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return c, fmt.Errorf("get %s: %w", url, err)
	}
	return c, nil
}

func (b *bench) scrape(ctx context.Context, url string) (loadgen.Metrics, error) {
	body, err := b.get(ctx, url)
	if err != nil {
		return nil, err
	}
	m := loadgen.ParseMetrics(body)
	if !m.Has("inlet_messages_committed_total") {
		return nil, fmt.Errorf("get %s: no inlet_messages_committed_total", url)
	}
	return m, nil
}

// countRows counts the stored messages with a read-only connection; it is safe
// while a server writes.
func countRows(ctx context.Context, path string) (int64, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		return 0, fmt.Errorf("count rows in %s: %w", path, err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM messages").Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows in %s: %w", path, err)
	}
	return n, nil
}

// rowsBefore counts the rows already in a database the server is about to open.
func rowsBefore(ctx context.Context, path string) (int64, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	return countRows(ctx, path)
}

// child is a receiver process started by the benchmark. Every path out of a
// run kills it (kill is safe to call at any time, and twice).
type child struct {
	name   string
	cmd    *exec.Cmd
	pid    int
	ready  ReadyInfo
	pinned string // the CPUs it is pinned to, and how
	out    *lineWriter
	errs   *tailBuffer
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// startChild starts bin with args, pinned to cpus if any, and waits for its
// JSON ready line.
func startChild(ctx context.Context, name, bin string, args []string, cpus []int) (*child, error) {
	argv := append([]string{bin}, args...)
	how := ""
	if len(cpus) > 0 {
		if ts, err := exec.LookPath("taskset"); err == nil {
			argv = append([]string{ts, "-c", cpuList(cpus)}, argv...)
			how = "taskset"
		} else {
			how = "sched_setaffinity"
		}
	}
	c := &child{
		name:   name,
		cmd:    exec.Command(argv[0], argv[1:]...),
		out:    &lineWriter{first: make(chan []byte, 1)},
		errs:   &tailBuffer{max: 16 << 10},
		exited: make(chan struct{}),
	}
	c.cmd.Stdout = c.out
	c.cmd.Stderr = c.errs
	c.cmd.SysProcAttr = loadgen.ChildAttr()
	c.cmd.WaitDelay = 5 * time.Second
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c.pid = c.cmd.Process.Pid
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	fail := func(err error) (*child, error) {
		c.kill()
		return nil, err
	}
	if how == "sched_setaffinity" {
		if err := loadgen.PinProcess(c.pid, cpus); err != nil {
			return fail(fmt.Errorf("%s: %w", name, err))
		}
	}
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case line := <-c.out.first:
		if err := json.Unmarshal(line, &c.ready); err != nil || c.ready.Event != "ready" {
			return fail(fmt.Errorf("%s: ready line %q: want {\"event\":\"ready\",...}", name, line))
		}
	case <-c.exited:
		return fail(c.exitError("before it was ready"))
	case <-timer.C:
		return fail(fmt.Errorf("%s: no ready line after 20s%s", name, c.errs.tail()))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if how == "sched_setaffinity" {
		// Threads started before the first call were not pinned.
		if err := loadgen.PinProcess(c.pid, cpus); err != nil {
			return fail(fmt.Errorf("%s: %w", name, err))
		}
	}
	if how != "" {
		c.pinned = cpuList(cpus) + " (" + how + ")"
	}
	return c, nil
}

func (c *child) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

func (c *child) exitError(when string) error {
	<-c.exited
	return fmt.Errorf("%s exited %s: %v%s", c.name, when, c.err, c.errs.tail())
}

// kill ends the process at once and waits for it.
func (c *child) kill() {
	if c.hasExited() {
		return
	}
	c.cmd.Process.Kill()
	<-c.exited
}

// stop asks the process to finish (SIGTERM) and kills it if it has not within timeout.
func (c *child) stop(timeout time.Duration) error {
	if c.hasExited() {
		return c.exitError("before it was stopped")
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.kill()
		return fmt.Errorf("stop %s: %w", c.name, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.exited:
		if c.err != nil {
			return fmt.Errorf("stop %s: %w%s", c.name, c.err, c.errs.tail())
		}
		return nil
	case <-t.C:
		c.kill()
		return fmt.Errorf("stop %s: still running %s after SIGTERM, killed%s", c.name, timeout, c.errs.tail())
	}
}

func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// lineWriter takes a child's stdout: the first line is its ready line, the last
// one (the baseline's final counts) is kept.
type lineWriter struct {
	mu      sync.Mutex
	partial []byte
	first   chan []byte
	sent    bool
	last    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		line, rest, ok := bytes.Cut(w.partial, []byte{'\n'})
		if !ok {
			break
		}
		line = bytes.Clone(line)
		w.partial = rest
		if !w.sent {
			w.sent = true
			w.first <- line
		} else {
			w.last = line
		}
	}
	if len(w.partial) > 1<<20 {
		w.partial = nil // not a line anybody will read
	}
	return len(p), nil
}

func (w *lineWriter) lastLine() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// tailBuffer keeps the end of a child's stderr, to show when it fails.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// tail is the last lines written, ready to append to an error message.
func (t *tailBuffer) tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.b
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	return "\n" + strings.TrimRight(string(b), "\n")
}

// benchReport is the --json output: every number of every run.
type benchReport struct {
	Scenario     string       `json:"scenario"`
	Transport    string       `json:"transport"`
	Devices      int          `json:"devices"`
	DurationS    float64      `json:"duration_s"`
	Count        int64        `json:"count,omitempty"`
	RatePerDev   float64      `json:"rate_per_device,omitempty"` // 0: as fast as possible
	UDPSenderCPU int          `json:"udp_sender_cpu"`            // -1: not pinned
	Window       int          `json:"window,omitempty"`          // ack: the most unacknowledged messages per connection
	Plain        string       `json:"plain_scenario,omitempty"`  // acknowledged scenarios with --baseline: the plain run's scenario
	Order        string       `json:"order"`
	Runs         []runReport  `json:"runs"`
	Ratio        *ratioReport `json:"ratio,omitempty"` // inlet ÷ baseline (or ÷ plain), with --baseline
}

// runReport is one receiver's numbers. Pointers are numbers that cannot be known
// for an inlet started elsewhere (--target).
type runReport struct {
	Target          string           `json:"target"`   // "inlet", "baseline", or "plain" (inlet under the plain scenario)
	Scenario        string           `json:"scenario"` // this run's scenario
	Addr            string           `json:"addr"`
	ServerCPUs      string           `json:"server_cpus,omitempty"`
	Devices         int              `json:"devices"`
	Sent            int64            `json:"sent"`
	SendErrors      int64            `json:"send_errors"`
	FirstSendError  string           `json:"first_send_error,omitempty"`
	Stored          *int64           `json:"stored,omitempty"` // rows in the database; lines or datagrams counted by the baseline
	Loss            *int64           `json:"loss,omitempty"`   // sent − stored
	LoadS           float64          `json:"load_s"`
	DrainS          float64          `json:"drain_s"` // after the load, until the last message was stored
	SentPerS        float64          `json:"sent_per_s"`
	StoredPerS      *float64         `json:"stored_per_s,omitempty"` // stored ÷ (load_s + drain_s)
	KernelDrops     *int64           `json:"udp_kernel_drops,omitempty"`
	Rejected        map[string]int64 `json:"rejected,omitempty"`
	CPUS            *float64         `json:"cpu_s,omitempty"` // receiver's user+system time over the run
	CPUMicrosPerMsg *float64         `json:"cpu_us_per_msg,omitempty"`
	PeakRSSMB       *float64         `json:"peak_rss_mb,omitempty"`
	// Acknowledged scenarios only: messages acknowledged, per second of load
	// (the load ends when the last ACK has been read), and the ack latency.
	Acked     *int64         `json:"acked,omitempty"`
	AckedPerS *float64       `json:"acked_per_s,omitempty"`
	Latency   *latencyReport `json:"ack_latency_ms,omitempty"`
	// Idle scenarios only: the held connections and what they cost the server.
	Idle *idleReport `json:"idle,omitempty"`
	// With --plot: the rates, second by second, over the load and the drain.
	PerSecond []rateSample `json:"per_second,omitempty"`
}

// idleReport is what the idle scenarios measure with every connection open and
// quiet. Pointers are unknown for a server not started here (--target), and
// goroutines for the baseline.
type idleReport struct {
	Conns            int      `json:"conns"`                     // connections open, each with its first message sent (and acknowledged)
	Failed           int      `json:"failed"`                    // devices that could not open theirs
	HoldS            float64  `json:"hold_s"`                    // how long they were held quiet before the measurement
	RSSBeforeMB      *float64 `json:"rss_before_mb,omitempty"`   // receiver's VmRSS before the first connection
	RSSIdleMB        *float64 `json:"rss_idle_mb,omitempty"`     // and with every connection open and idle
	KBPerConn        *float64 `json:"rss_kb_per_conn,omitempty"` // (idle − before) ÷ conns, KiB
	ServerConns      *int64   `json:"server_conns,omitempty"`    // inlet_connections_open at that moment
	GoroutinesBefore *int64   `json:"goroutines_before,omitempty"`
	GoroutinesIdle   *int64   `json:"goroutines_idle,omitempty"`
	// Of the memory per connection: goroutine stacks and Go heap in use
	// (go_memstats_stack_inuse_bytes, go_memstats_heap_inuse_bytes), KiB.
	StackKBPerConn *float64 `json:"stack_kb_per_conn,omitempty"`
	HeapKBPerConn  *float64 `json:"heap_kb_per_conn,omitempty"`

	before            serverGauges
	GoroutinesPerConn *float64 `json:"goroutines_per_conn,omitempty"`
}

// latencyReport is the ack latency in milliseconds: for ack from writing a
// message to reading the ACK covering it, for ack-cpm from starting to connect
// to reading the ACK. Read from a histogram with buckets 0.4% wide; max is exact.
type latencyReport struct {
	Samples int64   `json:"samples"`
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
}

type ratioReport struct {
	Against    string   `json:"against"` // "baseline", or "plain" for the acknowledged scenarios
	StoredPerS *float64 `json:"stored_per_s,omitempty"`
	CPUPerMsg  *float64 `json:"cpu_us_per_msg,omitempty"`
	// Against plain: the acknowledged run's acked msgs/s ÷ the plain run's stored msgs/s.
	AckedPerS *float64 `json:"acked_per_s,omitempty"`
	// Idle scenarios: resident memory per held connection.
	KBPerConn *float64 `json:"rss_kb_per_conn,omitempty"`
}

func ratios(runs []runReport) *ratioReport {
	var in, base *runReport
	for i := range runs {
		switch runs[i].Target {
		case "inlet":
			in = &runs[i]
		case "baseline", "plain":
			base = &runs[i]
		}
	}
	if in == nil || base == nil {
		return nil
	}
	r := &ratioReport{
		Against:    base.Target,
		StoredPerS: ratio(in.StoredPerS, base.StoredPerS),
		CPUPerMsg:  ratio(in.CPUMicrosPerMsg, base.CPUMicrosPerMsg),
	}
	if base.Target == "plain" {
		r.AckedPerS = ratio(in.AckedPerS, base.StoredPerS)
	}
	if in.Idle != nil && base.Idle != nil {
		r.KBPerConn = ratio(in.Idle.KBPerConn, base.Idle.KBPerConn)
	}
	return r
}

// ratio is a ÷ b, or nil when either is unknown.
func ratio(a, b *float64) *float64 {
	if a == nil || b == nil || *b == 0 {
		return nil
	}
	r := *a / *b
	return &r
}

func (r *runReport) rejectedTotal() int64 {
	var n int64
	for _, v := range r.Rejected {
		n += v
	}
	return n
}

// printBench writes the human table.
func printBench(w io.Writer, rep *benchReport) error {
	pace := "as fast as possible"
	if rep.RatePerDev > 0 {
		pace = fmt.Sprintf("%g msgs/s per device", rep.RatePerDev)
	}
	bound := ""
	if rep.Count > 0 {
		bound = fmt.Sprintf(" or %d messages", rep.Count)
	}
	devs := "devices"
	if rep.Devices == 1 {
		devs = "device"
	}
	window := ""
	if rep.Window > 0 {
		window = fmt.Sprintf(", window %d", rep.Window)
	}
	fmt.Fprintf(w, "inlet bench: %s over %s, %d %s, %gs%s, %s%s; order: %s\n",
		rep.Scenario, rep.Transport, rep.Devices, devs, rep.DurationS, bound, pace, window, rep.Order)
	if rep.UDPSenderCPU >= 0 {
		fmt.Fprintf(w, "sender pinned to CPU %d", rep.UDPSenderCPU)
		if len(rep.Runs) > 0 && rep.Runs[0].ServerCPUs != "" {
			fmt.Fprintf(w, ", receivers to CPU %s", rep.Runs[0].ServerCPUs)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	for _, r := range rep.Runs {
		if r.Idle != nil {
			return printIdleBench(w, rep)
		}
	}
	for _, r := range rep.Runs {
		if r.Acked != nil {
			return printAckBench(w, rep)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\tdevices\tsent\tstored\tloss\tmsgs/s\tCPU µs/msg\tpeak RSS MB\tUDP drops\trejected\t")
	for _, r := range rep.Runs {
		rejected := "-"
		if r.Rejected != nil {
			rejected = strconv.FormatInt(r.rejectedTotal(), 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", rep.Scenario, r.Target, r.Devices, r.Sent,
			optInt(r.Stored), optInt(r.Loss), optFloat(r.StoredPerS, 0), optSig(r.CPUMicrosPerMsg),
			optFloat(r.PeakRSSMB, 1), optInt(r.KernelDrops), rejected)
	}
	if rep.Ratio != nil {
		fmt.Fprintf(tw, "%s\tinlet/%s\t\t\t\t\t%s\t%s\t\t\t\t\n", rep.Scenario, rep.Ratio.Against,
			times(rep.Ratio.StoredPerS), times(rep.Ratio.CPUPerMsg))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "msgs/s: messages stored per second over the load plus the time to store the rest;")
	fmt.Fprintln(w, "CPU: the receiver process's user+system time from start of load to last message stored.")
	printRunNotes(w, rep)
	return nil
}

func printRunNotes(w io.Writer, rep *benchReport) {
	for _, r := range rep.Runs {
		if r.SendErrors > 0 {
			fmt.Fprintf(w, "%s: %d failed sends (retried), first: %s\n", r.Target, r.SendErrors, r.FirstSendError)
		}
		for reason, n := range r.Rejected {
			if n > 0 {
				fmt.Fprintf(w, "%s: rejected %s: %d\n", r.Target, reason, n)
			}
		}
	}
}

// printAckBench writes the table of an acknowledged scenario: with the acks and
// their latency, without the UDP columns.
func printAckBench(w io.Writer, rep *benchReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\tdevices\tsent\tacked\tstored\tloss\tmsgs/s\tacked/s\t"+
		"CPU µs/msg\tpeak RSS MB\trejected\tp50 ms\tp90 ms\tp99 ms\tmax ms\t")
	for _, r := range rep.Runs {
		rejected := "-"
		if r.Rejected != nil {
			rejected = strconv.FormatInt(r.rejectedTotal(), 10)
		}
		lat := []string{"-", "-", "-", "-"}
		if l := r.Latency; l != nil {
			lat = []string{sig3(l.P50), sig3(l.P90), sig3(l.P99), sig3(l.Max)}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Scenario, r.Target, r.Devices,
			r.Sent, optInt(r.Acked), optInt(r.Stored), optInt(r.Loss), optFloat(r.StoredPerS, 0),
			optFloat(r.AckedPerS, 0), optSig(r.CPUMicrosPerMsg), optFloat(r.PeakRSSMB, 1), rejected,
			strings.Join(lat, "\t"))
	}
	if ra := rep.Ratio; ra != nil {
		fmt.Fprintf(tw, "%s\tinlet/%s\t\t\t\t\t\t%s\t%s\t%s\t\t\t\t\t\t\t\n", rep.Scenario, ra.Against,
			times(ra.StoredPerS), times(ra.AckedPerS), times(ra.CPUPerMsg))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "msgs/s: messages stored per second over the load plus the time to store the rest;")
	fmt.Fprintln(w, "acked/s: messages acknowledged per second of load (which ends when the last ACK is read);")
	fmt.Fprintln(w, "p50..max: ack latency, from writing a message (ack) or starting to connect (ack-cpm) to")
	fmt.Fprintln(w, "reading the ACK that covers it; CPU: the receiver's user+system time.")
	if rep.Ratio != nil && rep.Ratio.Against == "plain" {
		fmt.Fprintf(w, "inlet/plain: %s against inlet under the plain %s scenario; acked/s is set against its msgs/s.\n",
			rep.Scenario, rep.Plain)
	}
	printRunNotes(w, rep)
	return nil
}

// printIdleBench writes the table of an idle scenario: the held connections and
// what they cost the receiver.
func printIdleBench(w io.Writer, rep *benchReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\tdevices\theld\tfailed\tsent\tacked\tstored\tloss\t"+
		"RSS before MB\tRSS idle MB\tKB/conn\tstack KB/conn\theap KB/conn\tgoroutines/conn\tp99 ms\t")
	for _, r := range rep.Runs {
		ir := r.Idle
		if ir == nil {
			ir = &idleReport{}
		}
		p99 := "-"
		if r.Latency != nil {
			p99 = sig3(r.Latency.P99)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Scenario, r.Target, r.Devices,
			ir.Conns, ir.Failed, r.Sent, optInt(r.Acked), optInt(r.Stored), optInt(r.Loss),
			optFloat(ir.RSSBeforeMB, 1), optFloat(ir.RSSIdleMB, 1), optFloat(ir.KBPerConn, 2),
			optFloat(ir.StackKBPerConn, 2), optFloat(ir.HeapKBPerConn, 2), optFloat(ir.GoroutinesPerConn, 2), p99)
	}
	if ra := rep.Ratio; ra != nil {
		fmt.Fprintf(tw, "%s\tinlet/%s\t\t\t\t\t\t\t\t\t\t%s\t\t\t\t\t\n", rep.Scenario, ra.Against, times(ra.KBPerConn))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "held: connections open, each with one message sent (idle-ack: and acknowledged), then held quiet;")
	fmt.Fprintln(w, "KB/conn: the receiver's VmRSS with all of them idle, less VmRSS before the first, per connection;")
	fmt.Fprintln(w, "stack, heap: of that, Go's goroutine stacks and heap in use (inlet's /metrics);")
	fmt.Fprintln(w, "after the hold each sent one more message (idle-ack: and read its ACK); stored counts both.")
	printRunNotes(w, rep)
	return nil
}

func optInt(p *int64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(*p, 10)
}

func times(p *float64) string {
	if p == nil {
		return "-"
	}
	return sig3(*p) + "x"
}

func optSig(p *float64) string {
	if p == nil {
		return "-"
	}
	return sig3(*p)
}

// sig3 formats v with three significant digits, and no exponent.
func sig3(v float64) string {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	prec := max(2-int(math.Floor(math.Log10(math.Abs(v)))), 0)
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func optFloat(p *float64, prec int) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'f', prec, 64)
}

// runBenchBaseline is the hidden command inlet bench starts for --baseline.
func runBenchBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench-baseline", "The bare receiver of inlet bench --baseline: reads TCP and UDP, counts lines ('\\n' bytes)\n"+
		"and datagrams, stores nothing. Prints the same JSON ready line as serve, serves GET /counts\n"+
		"as JSON on --http, and prints the final counts as one JSON line when it stops (SIGINT/SIGTERM).", stderr)
	tcp := fs.String("tcp", "127.0.0.1:0", "TCP listen address; empty disables TCP")
	udp := fs.String("udp", "127.0.0.1:0", "UDP listen address; empty disables UDP")
	httpAddr := fs.String("http", "127.0.0.1:0", "HTTP address for GET /counts; empty disables HTTP")
	udpBuffer := fs.Int("udp-buffer", DefaultConfig().UDPBuffer, "UDP socket receive buffer in bytes, as for serve")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := loadgen.ListenBaseline(*tcp, *udp, *udpBuffer)
	if err != nil {
		return err
	}
	defer b.Close()
	ready := ReadyInfo{Event: "ready", TCP: b.TCPAddr(), UDP: b.UDPAddr(), Version: version()}
	var srv *http.Server
	if *httpAddr != "" {
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			return fmt.Errorf("listen http %s: %w", *httpAddr, err)
		}
		srv = &http.Server{Handler: b.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		ready.HTTP = ln.Addr().String()
	}
	b.Serve()
	line, _ := json.Marshal(ready)
	fmt.Fprintf(stdout, "%s\n", line)
	<-ctx.Done()
	stop()
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if srv != nil {
		errs = append(errs, srv.Shutdown(closeCtx))
	}
	errs = append(errs, b.Close())
	counts, _ := json.Marshal(b.Counts())
	fmt.Fprintf(stdout, "%s\n", counts)
	return errors.Join(errs...)
}
