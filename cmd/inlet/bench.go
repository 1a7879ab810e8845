package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/inletdev/inlet/internal/loadgen"
	"github.com/inletdev/inlet/postgres"
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
	TLS       bool   // --tls: the TCP scenarios over TLS
	TLSVer    string // --tls-version
	TLSResume bool   // --tls-resume
	tlsSet    bool   // --tls-version or --tls-resume given, which need --tls
	Nodes     int    // --nodes: inlet serve started on the same PostgreSQL --db, behind a proxy
	DBReset   bool   // --db-reset: drop and create again a PostgreSQL --db's schema that holds rows
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
		"the stored rate, the server's CPU time per message, its peak memory and the bytes it wrote to disk\n"+
		"per message stored (write_bytes of /proc/<pid>/io; 0 for a database on tmpfs).\n"+
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
		"the started server inherits; --devices 10000 needs about 10,300 (ulimit -Hn).\n"+
		"With --tls the TCP scenarios speak TLS (crypto/tls, one version, ECDHE with X25519 or P-256) to the\n"+
		"started server's --tls port, which gets a fresh ECDSA P-256 certificate; every connection is a\n"+
		"handshake, full or (--tls-resume) resumed with a session ticket, and each run reports the handshakes\n"+
		"and handshakes per second (tutorial and ack-cpm: one per message). --tls --baseline runs the same\n"+
		"scenario without TLS first and ends with inlet/no-tls ratios.", stderr)
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
		"postgres://…: a PostgreSQL database whose schema (the URL's search_path, public by default) must be empty\n"+
		"or hold an inlet schema without messages or devices (see --db-reset); each run empties it again;\n"+
		"with --target, the target's database, to count what it stored")
	fs.BoolVar(&bc.DBReset, "db-reset", false, "--db postgres://…: if the schema holds rows or other tables, drop it (DROP SCHEMA … CASCADE)\n"+
		"and create it again, instead of refusing")
	fs.IntVar(&bc.Nodes, "nodes", 1, "start this many inlet serve on the same --db postgres://…, behind a round-robin TCP proxy\n"+
		"in the bench's process that the devices connect to (TCP scenarios; CPU, memory and disk add up the nodes)")
	fs.IntVar(&bc.SenderCPU, "udp-sender-cpu", -1, "udp: pin the sender threads to this CPU and the started server to the other CPUs (-1: no pinning)")
	fs.IntVar(&bc.Window, "window", loadgen.DefaultWindow, "ack: most messages one connection may have sent and not yet seen acknowledged")
	fs.StringVar(&bc.Plot, "plot", "", "write messages/s sent and stored (acked, for ack scenarios), sampled each second over the run,\n"+
		"as an SVG chart to this file")
	fs.BoolVar(&bc.TLS, "tls", false, "tutorial, stream, ack, ack-cpm, idle, idle-ack: connect over TLS to the server's --tls port\n"+
		"(with --target: the TLS address, its certificate not verified)")
	fs.StringVar(&bc.TLSVer, "tls-version", "1.2", "--tls: the TLS version the devices offer, 1.2 (what ESP8266 and ESP32 stacks speak) or 1.3")
	fs.BoolVar(&bc.TLSResume, "tls-resume", false, "--tls: each device keeps its session ticket, so every handshake after its first is resumed\n"+
		"(TLS 1.3 delivers tickets after the handshake: a device must read, so tutorial cannot resume with 1.3)")
	fs.StringVar(&bc.ServerBin, "server-bin", "", "inlet binary to start as server and baseline (default: this one; for tests and comparing builds)")
	return bc, fs
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	bc, fs := benchFlags(stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		bc.windowSet = bc.windowSet || f.Name == "window"
		bc.tlsSet = bc.tlsSet || f.Name == "tls-version" || f.Name == "tls-resume"
	})
	sc, err := bc.check()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := loadgen.BenchConfig{
		Scenario: sc, Devices: bc.Devices, Duration: bc.Duration, Count: bc.Count, Rate: bc.Rate,
		SenderCPU: bc.SenderCPU, Window: bc.Window, Target: bc.Target, DB: bc.DB, ServerBin: bc.ServerBin,
		Baseline: bc.Baseline, PerSecond: bc.Plot != "", TLSResume: bc.TLSResume,
		Nodes: bc.Nodes, DBReset: bc.DBReset,
	}
	if bc.TLS {
		cfg.TLSVersion, _ = loadgen.ParseTLSVersion(bc.TLSVer) // checked
	}
	if isTerminal(stderr) {
		cfg.Progress = stderr
	}
	b, err := loadgen.NewBench(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()

	rep := loadgen.Report{
		Scenario:     sc.Name,
		Transport:    sc.Transport,
		Devices:      b.Devices(),
		DurationS:    bc.Duration.Seconds(),
		Count:        bc.Count,
		RatePerDev:   bc.Rate,
		UDPSenderCPU: bc.SenderCPU,
		Order:        "inlet",
	}
	if bc.Target == "" {
		rep.Store, rep.Nodes = "sqlite", bc.Nodes
		if postgres.IsURL(bc.DB) {
			rep.Store = "postgres"
		}
	}
	if sc.Name == "ack" {
		rep.Window = bc.Window
	}
	if bc.TLS {
		rep.TLSVersion, rep.TLSResume = bc.TLSVer, bc.TLSResume
	}
	runs := []string{"inlet"}
	switch plain := b.Plain(); {
	case bc.Baseline && bc.TLS:
		runs = []string{"no-tls", "inlet"}
		rep.Order = "inlet without TLS, then inlet over TLS " + bc.TLSVer
	case bc.Baseline && plain != nil:
		runs = []string{"plain", "inlet"}
		rep.Plain = plain.Name
		rep.Order = "plain inlet (" + plain.Name + "), then inlet (" + sc.Name + ")"
	case bc.Baseline:
		runs = []string{"baseline", "inlet"}
		rep.Order = "baseline, then inlet"
	}
	for _, name := range runs {
		r, err := b.Run(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("bench %s: interrupted", name)
			}
			return fmt.Errorf("bench %s: %w", name, err)
		}
		rep.Runs = append(rep.Runs, r)
	}
	rep.Ratio = loadgen.Ratios(rep.Runs)
	if bc.Plot != "" {
		if err := loadgen.WritePlot(bc.Plot, &rep); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
	}
	if bc.JSON {
		return json.NewEncoder(stdout).Encode(&rep)
	}
	return printBench(stdout, &rep)
}

// check validates the flags and returns the scenario.
func (bc *benchConfig) check() (*loadgen.Scenario, error) {
	sc, err := loadgen.Lookup(bc.Scenario)
	if err != nil {
		return nil, fmt.Errorf("--scenario: %w", err)
	}
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
	case bc.TLS && sc.Transport != "tcp":
		return nil, fmt.Errorf("--tls applies to the TCP scenarios, not %s", sc.Name)
	case bc.tlsSet && !bc.TLS:
		return nil, errors.New("--tls-version and --tls-resume need --tls")
	case bc.Nodes < 1 || bc.Nodes > 16:
		return nil, fmt.Errorf("--nodes %d: want 1 to 16", bc.Nodes)
	case bc.Nodes > 1 && !postgres.IsURL(bc.DB):
		return nil, errors.New("--nodes: the nodes share one database: give --db postgres://…")
	case bc.Nodes > 1 && bc.Target != "":
		return nil, errors.New("--nodes starts its own servers: not with --target")
	case bc.Nodes > 1 && sc.Transport != "tcp":
		return nil, fmt.Errorf("--nodes: the proxy in front of the nodes is TCP only, not --scenario %s", sc.Name)
	case bc.DBReset && !postgres.IsURL(bc.DB):
		return nil, errors.New("--db-reset applies to --db postgres://… only")
	case bc.DBReset && bc.Target != "":
		return nil, errors.New("--db-reset: with --target the database is the target's: not emptied by the bench")
	case bc.TLS && bc.Target != "" && bc.Baseline:
		return nil, errors.New("--tls --baseline starts its own servers: not with --target")
	}
	if bc.TLS {
		if _, err := loadgen.ParseTLSVersion(bc.TLSVer); err != nil {
			return nil, fmt.Errorf("--tls-version: %w", err)
		}
	}
	return sc, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// printBench writes the human table.
func printBench(w io.Writer, rep *loadgen.Report) error {
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
	over := rep.Transport
	if rep.TLSVersion != "" {
		over = "TLS " + rep.TLSVersion
		if rep.TLSResume {
			over += " (sessions resumed)"
		}
	}
	fmt.Fprintf(w, "inlet bench: %s over %s, %d %s, %gs%s, %s%s; order: %s\n",
		rep.Scenario, over, rep.Devices, devs, rep.DurationS, bound, pace, window, rep.Order)
	if rep.Store == "postgres" {
		if rep.Nodes > 1 {
			fmt.Fprintf(w, "servers: %d inlet serve nodes on one PostgreSQL database, behind a round-robin TCP proxy\n", rep.Nodes)
		} else {
			fmt.Fprintln(w, "server: inlet serve on a PostgreSQL database")
		}
	}
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
	fmt.Fprintln(tw, "scenario\ttarget\tdevices\tsent\tstored\tloss\tmsgs/s\tCPU µs/msg\tpeak RSS MB\tdisk B/msg\tUDP drops\trejected\t")
	for _, r := range rep.Runs {
		rejected := "-"
		if r.Rejected != nil {
			rejected = strconv.FormatInt(r.RejectedTotal(), 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", rep.Scenario, r.Target, r.Devices, r.Sent,
			optInt(r.Stored), optInt(r.Loss), optFloat(r.StoredPerS, 0), optSig(r.CPUMicrosPerMsg),
			optFloat(r.PeakRSSMB, 1), optFloat(r.DiskBytesPerMsg, 0), optInt(r.KernelDrops), rejected)
	}
	if rep.Ratio != nil {
		fmt.Fprintf(tw, "%s\tinlet/%s\t\t\t\t\t%s\t%s\t\t\t\t\t\n", rep.Scenario, rep.Ratio.Against,
			times(rep.Ratio.StoredPerS), times(rep.Ratio.CPUPerMsg))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "msgs/s: messages stored per second over the load plus the time to store the rest;")
	fmt.Fprintln(w, "CPU: the receiver process's user+system time from start of load to last message stored;")
	fmt.Fprintln(w, diskNote)
	printRunNotes(w, rep)
	return nil
}

func printRunNotes(w io.Writer, rep *loadgen.Report) {
	for _, r := range rep.Runs {
		if s := r.Server; s != nil && s.BatchMean != nil && s.CommitMeanMS != nil {
			line := fmt.Sprintf("%s: server: %d commits of %s messages, %s ms each on average", r.Target, s.Commits,
				sig3(*s.BatchMean), sig3(*s.CommitMeanMS))
			if s.AckMeanMS != nil {
				line += fmt.Sprintf("; ack latency in the server %s ms on average (queue to ACK handed to the connection)",
					sig3(*s.AckMeanMS))
			}
			fmt.Fprintln(w, line)
		}
		if r.TLSHandshakes != nil {
			fmt.Fprintf(w, "%s: TLS %s, %d handshakes (%d resumed), %s handshakes/s\n", r.Target, r.TLS,
				*r.TLSHandshakes, *r.TLSResumed, optFloat(r.TLSHandshakesPerS, 0))
		}
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
func printAckBench(w io.Writer, rep *loadgen.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\tdevices\tsent\tacked\tstored\tloss\tmsgs/s\tacked/s\t"+
		"CPU µs/msg\tpeak RSS MB\tdisk B/msg\trejected\tp50 ms\tp90 ms\tp99 ms\tmax ms\t")
	for _, r := range rep.Runs {
		rejected := "-"
		if r.Rejected != nil {
			rejected = strconv.FormatInt(r.RejectedTotal(), 10)
		}
		lat := []string{"-", "-", "-", "-"}
		if l := r.Latency; l != nil {
			lat = []string{sig3(l.P50), sig3(l.P90), sig3(l.P99), sig3(l.Max)}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Scenario, r.Target, r.Devices,
			r.Sent, optInt(r.Acked), optInt(r.Stored), optInt(r.Loss), optFloat(r.StoredPerS, 0),
			optFloat(r.AckedPerS, 0), optSig(r.CPUMicrosPerMsg), optFloat(r.PeakRSSMB, 1), optFloat(r.DiskBytesPerMsg, 0), rejected,
			strings.Join(lat, "\t"))
	}
	if ra := rep.Ratio; ra != nil {
		fmt.Fprintf(tw, "%s\tinlet/%s\t\t\t\t\t\t%s\t%s\t%s\t\t\t\t\t\t\t\t\n", rep.Scenario, ra.Against,
			times(ra.StoredPerS), times(ra.AckedPerS), times(ra.CPUPerMsg))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "msgs/s: messages stored per second over the load plus the time to store the rest;")
	fmt.Fprintln(w, "acked/s: messages acknowledged per second of load (which ends when the last ACK is read);")
	fmt.Fprintln(w, "p50..max: ack latency, from writing a message (ack) or starting to connect (ack-cpm) to")
	fmt.Fprintln(w, "reading the ACK that covers it; CPU: the receiver's user+system time;")
	fmt.Fprintln(w, diskNote)
	if rep.Ratio != nil && rep.Ratio.Against == "no-tls" {
		fmt.Fprintln(w, "inlet/no-tls: over TLS against the same scenario without TLS.")
	}
	if rep.Ratio != nil && rep.Ratio.Against == "plain" {
		fmt.Fprintf(w, "inlet/plain: %s against inlet under the plain %s scenario; acked/s is set against its msgs/s.\n",
			rep.Scenario, rep.Plain)
	}
	printRunNotes(w, rep)
	return nil
}

// printIdleBench writes the table of an idle scenario: the held connections and
// what they cost the receiver.
func printIdleBench(w io.Writer, rep *loadgen.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\tdevices\theld\tfailed\tsent\tacked\tstored\tloss\tCPU µs/msg\tdisk B/msg\t"+
		"RSS before MB\tRSS idle MB\tKB/conn\tstack KB/conn\theap KB/conn\tgoroutines/conn\tp99 ms\t")
	for _, r := range rep.Runs {
		ir := r.Idle
		if ir == nil {
			ir = &loadgen.IdleReport{}
		}
		p99 := "-"
		if r.Latency != nil {
			p99 = sig3(r.Latency.P99)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Scenario, r.Target, r.Devices,
			ir.Conns, ir.Failed, r.Sent, optInt(r.Acked), optInt(r.Stored), optInt(r.Loss), optSig(r.CPUMicrosPerMsg), optFloat(r.DiskBytesPerMsg, 0),
			optFloat(ir.RSSBeforeMB, 1), optFloat(ir.RSSIdleMB, 1), optFloat(ir.KBPerConn, 2),
			optFloat(ir.StackKBPerConn, 2), optFloat(ir.HeapKBPerConn, 2), optFloat(ir.GoroutinesPerConn, 2), p99)
	}
	if ra := rep.Ratio; ra != nil {
		fmt.Fprintf(tw, "%s\tinlet/%s\t\t\t\t\t\t\t\t\t\t\t\t%s\t\t\t\t\t\n", rep.Scenario, ra.Against, times(ra.KBPerConn))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "held: connections open, each with one message sent (idle-ack: and acknowledged), then held quiet;")
	fmt.Fprintln(w, "KB/conn: the receiver's VmRSS with all of them idle, less VmRSS before the first, per connection;")
	fmt.Fprintln(w, "stack, heap: of that, Go's goroutine stacks and heap in use (inlet's /metrics);")
	fmt.Fprintln(w, "after the hold each sent one more message (idle-ack: and read its ACK); stored counts both;")
	fmt.Fprintln(w, "CPU µs/msg: the receiver's user+system time over the whole run (opening and holding too), per message stored;")
	fmt.Fprintln(w, diskNote)
	printRunNotes(w, rep)
	return nil
}

// diskNote explains the disk B/msg column.
const diskNote = "disk B/msg: bytes the receiver wrote to storage (/proc/<pid>/io write_bytes) over the run, per message stored."

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
