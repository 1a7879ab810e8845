package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet/internal/loadgen"
	"github.com/inletdev/inlet/internal/pgtest"
	"github.com/inletdev/inlet/postgres"
)

// benchJSON runs inlet bench in-process against the real binary (the test binary
// cannot serve) and returns its report. It asserts no timings, only counts.
func benchJSON(t *testing.T, args ...string) loadgen.Report {
	t.Helper()
	args = append([]string{"bench", "--json", "--server-bin", inletBinary(t)}, args...)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("inlet %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	}
	var rep loadgen.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report %q: %v", stdout.String(), err)
	}
	return rep
}

// checkCounts asserts that a run's numbers add up.
func checkCounts(t *testing.T, r loadgen.RunReport) {
	t.Helper()
	if r.Stored == nil || r.Loss == nil {
		t.Fatalf("%s: no stored or loss count: %+v", r.Target, r)
	}
	if *r.Stored <= 0 {
		t.Errorf("%s: stored %d, want some", r.Target, *r.Stored)
	}
	if *r.Stored != r.Sent-*r.Loss {
		t.Errorf("%s: stored %d, sent %d, loss %d: do not add up", r.Target, *r.Stored, r.Sent, *r.Loss)
	}
	if r.CPUS == nil || r.PeakRSSMB == nil || *r.PeakRSSMB <= 0 {
		t.Errorf("%s: no CPU time or peak RSS: %+v", r.Target, r)
	}
	// Disk writes per message, for every receiver started here.
	switch {
	case r.DiskWriteBytes == nil || r.DiskBytesPerMsg == nil:
		t.Errorf("%s: no disk writes: %+v", r.Target, r)
	case *r.DiskWriteBytes < 0 || *r.Stored > 0 && *r.DiskBytesPerMsg != float64(*r.DiskWriteBytes)/float64(*r.Stored):
		t.Errorf("%s: disk writes %d, %g per message for %d stored", r.Target, *r.DiskWriteBytes, *r.DiskBytesPerMsg, *r.Stored)
	}
	// inlet's own view of its commits, for every inlet run.
	if r.Target != "baseline" {
		s := r.Server
		switch {
		case s == nil || s.BatchMean == nil || s.CommitMeanMS == nil:
			t.Errorf("%s: no server commit figures: %+v", r.Target, s)
		case s.Commits <= 0 || *s.BatchMean < 1 || float64(s.Commits)**s.BatchMean+0.5 < float64(*r.Stored): // the mean is a float
			t.Errorf("%s: %d commits of %g messages for %d stored", r.Target, s.Commits, *s.BatchMean, *r.Stored)
		}
	}
	t.Logf("%s: sent %d, stored %d, loss %d, send errors %d %s", r.Target, r.Sent, *r.Stored, *r.Loss, r.SendErrors, r.FirstSendError)
}

// TestBenchEveryScenario is the smoke test of inlet bench: a one-second run of
// every scenario against a server it starts (the idle ones with 200 devices), and
// one --plot. It asserts only that the counts add up: stored = sent − loss, and
// for the acknowledged and idle scenarios what follows from their protocol.
func TestBenchEveryScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server per scenario and sends load for a second each")
	}
	for _, sc := range loadgen.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			args := []string{"--scenario", sc.Name, "--duration", "1s"}
			switch {
			case sc.Idle:
				args = append(args, "--devices", "200")
			case sc.DefaultDevices > 4:
				args = append(args, "--devices", "4")
			}
			var plot string
			if sc.Name == "stream" {
				plot = filepath.Join(t.TempDir(), "stream.svg")
				args = append(args, "--plot", plot)
			}
			rep := benchJSON(t, args...)
			if len(rep.Runs) != 1 || rep.Runs[0].Target != "inlet" || rep.Ratio != nil {
				t.Fatalf("runs %+v, want one inlet run", rep.Runs)
			}
			r := rep.Runs[0]
			if sc.Acked {
				checkAcked(t, r)
			} else {
				checkCounts(t, r)
			}
			if sc.Idle {
				checkIdle(t, r, 200)
			}
			if plot != "" {
				checkPlot(t, plot, len(r.PerSecond))
			}
			if r.TLSHandshakes != nil {
				t.Errorf("a run without --tls reports TLS handshakes: %+v", r)
			}
		})
	}
	// Every TCP scenario again over TLS, each version and resumption at least once.
	for _, tc := range []struct {
		scenario string
		args     []string
	}{
		{"tutorial", []string{"--tls-resume"}},
		{"stream", nil},
		{"ack", []string{"--tls-version", "1.3"}},
		{"ack-cpm", []string{"--tls-version", "1.3", "--tls-resume"}},
		{"ack-cpm", nil},
		{"idle", nil},
		{"idle-ack", []string{"--tls-version", "1.3"}},
	} {
		t.Run(tc.scenario+"/tls/"+strings.Join(tc.args, " "), func(t *testing.T) {
			sc := mustLookup(t, tc.scenario)
			devices := 4
			if sc.Idle {
				devices = 50
			}
			args := append([]string{"--scenario", tc.scenario, "--duration", "1s", "--devices", strconv.Itoa(devices), "--tls"}, tc.args...)
			rep := benchJSON(t, args...)
			if len(rep.Runs) != 1 || rep.Runs[0].Target != "inlet" {
				t.Fatalf("runs %+v, want one inlet run", rep.Runs)
			}
			r := rep.Runs[0]
			if sc.Acked {
				checkAcked(t, r)
			} else {
				checkCounts(t, r)
			}
			if sc.Idle {
				checkIdle(t, r, devices)
			}
			checkTLS(t, r, sc, devices, slices.Contains(tc.args, "--tls-resume"))
		})
	}
}

// checkTLS asserts that a TLS run counted its handshakes as its scenario makes
// them: one per device for the persistent scenarios, one per message for the
// connect-per-message ones, of which all but each device's first are resumed
// with --tls-resume, and none without.
func checkTLS(t *testing.T, r loadgen.RunReport, sc *loadgen.Scenario, devices int, resume bool) {
	t.Helper()
	if r.TLS == "" || r.TLSHandshakes == nil || r.TLSResumed == nil || r.TLSHandshakesPerS == nil {
		t.Fatalf("no TLS figures: %+v", r)
	}
	hs, resumed := *r.TLSHandshakes, *r.TLSResumed
	perMessage := sc.Name == "tutorial" || sc.Name == "ack-cpm"
	switch {
	case r.SendErrors > 0:
		t.Logf("%d send errors (%s): handshake counts not checked exactly", r.SendErrors, r.FirstSendError)
	case perMessage && hs != r.Sent:
		t.Errorf("%d handshakes for %d messages sent one per connection", hs, r.Sent)
	case !perMessage && hs != int64(devices):
		t.Errorf("%d handshakes for %d devices with one connection each", hs, devices)
	case resume && resumed != hs-int64(devices):
		t.Errorf("%d of %d handshakes resumed, want all but the %d devices' first", resumed, hs, devices)
	}
	if !resume && resumed != 0 {
		t.Errorf("%d handshakes resumed without --tls-resume", resumed)
	}
	t.Logf("TLS %s: %d handshakes, %d resumed", r.TLS, hs, resumed)
}

// --tls --baseline: the same scenario without TLS first, and the ratios.
func TestBenchTLSAgainstNoTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	rep := benchJSON(t, "--scenario", "ack", "--devices", "4", "--duration", "1s", "--tls", "--baseline")
	if len(rep.Runs) != 2 || rep.Runs[0].Target != "no-tls" || rep.Runs[0].Scenario != "ack" ||
		rep.Runs[1].Target != "inlet" || rep.Runs[1].TLS != "1.2" || rep.TLSVersion != "1.2" {
		t.Fatalf("runs %+v, want ack without TLS then ack over TLS 1.2", rep.Runs)
	}
	if rep.Runs[0].TLSHandshakes != nil || rep.Runs[0].TLS != "" {
		t.Errorf("the no-tls run reports TLS: %+v", rep.Runs[0])
	}
	checkAcked(t, rep.Runs[0])
	checkAcked(t, rep.Runs[1])
	checkTLS(t, rep.Runs[1], mustLookup(t, "ack"), 4, false)
	if rep.Ratio == nil || rep.Ratio.Against != "no-tls" || rep.Ratio.AckedPerS == nil || rep.Ratio.StoredPerS == nil {
		t.Errorf("ratio %+v, want inlet/no-tls with acked/s", rep.Ratio)
	}
}

func mustLookup(t *testing.T, name string) *loadgen.Scenario {
	t.Helper()
	sc, err := loadgen.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// checkIdle asserts that an idle run held every connection and that each was
// served twice: its first message and the one sent after the hold.
func checkIdle(t *testing.T, r loadgen.RunReport, devices int) {
	t.Helper()
	ir := r.Idle
	if ir == nil {
		t.Fatalf("no idle report: %+v", r)
	}
	if ir.Conns+ir.Failed != devices || ir.Conns <= 0 {
		t.Errorf("held %d, failed %d, of %d devices", ir.Conns, ir.Failed, devices)
	}
	if r.SendErrors == 0 && (ir.Failed != 0 || r.Sent != int64(2*ir.Conns) || *r.Stored != r.Sent) {
		t.Errorf("no errors, but held %d, failed %d, sent %d, stored %d: want every connection served twice",
			ir.Conns, ir.Failed, r.Sent, *r.Stored)
	}
	if ir.RSSBeforeMB == nil || ir.RSSIdleMB == nil || ir.KBPerConn == nil || ir.GoroutinesPerConn == nil {
		t.Errorf("memory or goroutines per connection not measured: %+v", *ir)
	}
	if ir.ServerConns == nil || *ir.ServerConns != int64(ir.Conns) {
		t.Errorf("server had %v connections open at the measurement, %d held", ir.ServerConns, ir.Conns)
	}
	t.Logf("%s: held %d, %.2f KB and %.2f goroutines per connection", r.Scenario, ir.Conns, *ir.KBPerConn, *ir.GoroutinesPerConn)
}

// checkPlot asserts that the --plot file is an SVG with a polyline per series,
// of a point per sample.
func checkPlot(t *testing.T, path string, samples int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if samples == 0 {
		t.Fatal("--plot: no samples in the report")
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	var lines []int
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("--plot: not well-formed XML: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = se.Name.Local
		}
		if se.Name.Local == "polyline" {
			for _, a := range se.Attr {
				if a.Name.Local == "points" {
					lines = append(lines, len(strings.Fields(a.Value)))
				}
			}
		}
	}
	if root != "svg" || len(lines) != 2 || lines[0] != samples || lines[1] != samples {
		t.Errorf("--plot: root %q, polylines with %v points: want svg, 2 lines of %d", root, lines, samples)
	}
}

func TestBenchScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and sends load for a second each")
	}
	for _, tc := range []struct {
		name   string
		args   []string
		noLoss bool
	}{
		{"tutorial at a low rate", []string{"--scenario", "tutorial", "--devices", "4", "--duration", "1s", "--rate", "50"}, true},
		{"stream at a low rate", []string{"--scenario", "stream", "--devices", "4", "--duration", "1s", "--rate", "500"}, true},
		{"udp at a low rate", []string{"--scenario", "udp", "--duration", "1s", "--rate", "500"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := benchJSON(t, tc.args...)
			if len(rep.Runs) != 1 || rep.Runs[0].Target != "inlet" || rep.Ratio != nil {
				t.Fatalf("runs %+v, want one inlet run", rep.Runs)
			}
			r := rep.Runs[0]
			checkCounts(t, r)
			if tc.noLoss && *r.Loss != 0 {
				t.Errorf("loss %d at a low rate, want 0 (rejected %v)", *r.Loss, r.Rejected)
			}
		})
	}
}

// checkAcked asserts that an acknowledged run's numbers add up: without errors
// every message sent is acknowledged and stored, and there is a latency for each.
func checkAcked(t *testing.T, r loadgen.RunReport) {
	t.Helper()
	checkCounts(t, r)
	if r.Acked == nil || r.AckedPerS == nil || r.Latency == nil {
		t.Fatalf("%s: no acked count or latency: %+v", r.Target, r)
	}
	if *r.Acked <= 0 || *r.AckedPerS <= 0 {
		t.Errorf("%s: acked %d (%f/s), want some", r.Target, *r.Acked, *r.AckedPerS)
	}
	if r.SendErrors == 0 && (*r.Stored != *r.Acked || *r.Acked != r.Sent-*r.Loss || *r.Loss != 0) {
		t.Errorf("%s: sent %d, acked %d, stored %d, loss %d, no errors: want stored == acked == sent", r.Target,
			r.Sent, *r.Acked, *r.Stored, *r.Loss)
	}
	if *r.Acked > r.Sent {
		t.Errorf("%s: acked %d of %d sent", r.Target, *r.Acked, r.Sent)
	}
	l := r.Latency
	if s := r.Server; s != nil && (s.AckMeanMS == nil || *s.AckMeanMS < 0) {
		t.Errorf("%s: no ack latency in the server: %+v", r.Target, *s)
	}
	if l.Samples != *r.Acked {
		t.Errorf("%s: %d latencies for %d acked", r.Target, l.Samples, *r.Acked)
	}
	if l.P50 < 0 || l.P90 < l.P50 || l.P99 < l.P90 || l.Max < l.P99 {
		t.Errorf("%s: latency percentiles out of order: %+v", r.Target, *l)
	}
	t.Logf("%s %s: acked %d, latency ms %+v", r.Target, r.Scenario, *r.Acked, *l)
}

func TestBenchAckScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and sends load for a second each")
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"ack with a small window at a rate", []string{"--scenario", "ack", "--devices", "4", "--window", "4", "--duration", "1s", "--rate", "200"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := benchJSON(t, tc.args...)
			if len(rep.Runs) != 1 || rep.Runs[0].Target != "inlet" || rep.Ratio != nil {
				t.Fatalf("runs %+v, want one inlet run", rep.Runs)
			}
			checkAcked(t, rep.Runs[0])
		})
	}
}

// For an acknowledged scenario --baseline compares with plain inlet.
func TestBenchAckPlainBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	rep := benchJSON(t, "--scenario", "ack", "--devices", "4", "--duration", "1s", "--baseline")
	if len(rep.Runs) != 2 || rep.Runs[0].Target != "plain" || rep.Runs[0].Scenario != "stream" ||
		rep.Runs[1].Target != "inlet" || rep.Runs[1].Scenario != "ack" || rep.Plain != "stream" {
		t.Fatalf("runs %+v, want plain stream then inlet ack", rep.Runs)
	}
	checkCounts(t, rep.Runs[0])
	if rep.Runs[0].Acked != nil {
		t.Errorf("the plain run counted acks: %+v", rep.Runs[0])
	}
	checkAcked(t, rep.Runs[1])
	if rep.Ratio == nil || rep.Ratio.Against != "plain" || rep.Ratio.AckedPerS == nil {
		t.Errorf("ratio %+v, want acked/plain", rep.Ratio)
	}
}

// --count bounds the messages sent in all.
func TestBenchCount(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	rep := benchJSON(t, "--scenario", "stream", "--devices", "3", "--count", "1000", "--duration", "30s")
	r := rep.Runs[0]
	checkCounts(t, r)
	if r.Sent != 1000 || *r.Loss != 0 {
		t.Errorf("sent %d, loss %d: want 1000 and 0", r.Sent, *r.Loss)
	}
}

// Pinned UDP: the sender's thread on one CPU, the server on the others.
func TestBenchUDPPinned(t *testing.T) {
	if testing.Short() || runtime.GOOS != "linux" || runtime.NumCPU() < 2 {
		t.Skip("needs Linux and 2 CPUs")
	}
	rep := benchJSON(t, "--scenario", "udp", "--duration", "1s", "--udp-sender-cpu", "1")
	r := rep.Runs[0]
	checkCounts(t, r)
	if r.ServerCPUs == "" {
		t.Errorf("server not pinned: %+v", r)
	}
}

// With --baseline the bare receiver counts every line the stream sent.
func TestBenchBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and the baseline")
	}
	// os/signal starts its one permanent goroutine on first use; start it now
	// so that it is not counted as leaked below.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGUSR2)
	signal.Reset(syscall.SIGUSR2)
	before := runtime.NumGoroutine()

	rep := benchJSON(t, "--scenario", "stream", "--devices", "4", "--duration", "1s", "--baseline")
	if len(rep.Runs) != 2 || rep.Runs[0].Target != "baseline" || rep.Runs[1].Target != "inlet" {
		t.Fatalf("runs %+v, want baseline then inlet", rep.Runs)
	}
	base := rep.Runs[0]
	checkCounts(t, base)
	if *base.Stored != base.Sent {
		t.Errorf("baseline counted %d lines, %d sent", *base.Stored, base.Sent)
	}
	checkCounts(t, rep.Runs[1])
	if rep.Ratio == nil {
		t.Error("no inlet/baseline ratio")
	}
	// Every goroutine the benchmark started has ended.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestBenchFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "192.0.2.1:3000"}, "not a loopback address"},
		{[]string{"--scenario", "nope"}, "unknown scenario"},
		{[]string{"--duration", "0"}, "--duration"},
		{[]string{"--scenario", "stream", "--udp-sender-cpu", "0"}, "--udp-sender-cpu"},
		{[]string{"--scenario", "ack", "--window", "0"}, "--window"},
		{[]string{"--scenario", "stream", "--window", "8"}, "--window applies"},
		{[]string{"stray"}, "unexpected argument"},
		{[]string{"--scenario", "idle", "--rate", "5"}, "do not apply"},
		{[]string{"--scenario", "idle-ack", "--count", "5"}, "do not apply"},
		{[]string{"--scenario", "udp", "--tls"}, "--tls applies"},
		{[]string{"--scenario", "stream", "--tls-resume"}, "need --tls"},
		{[]string{"--scenario", "stream", "--tls", "--tls-version", "1.1"}, "--tls-version"},
		{[]string{"--scenario", "stream", "--tls", "--baseline", "--target", "127.0.0.1:3443"}, "not with --target"},
		{[]string{"--nodes", "2"}, "give --db postgres://"},
		{[]string{"--nodes", "2", "--db", "x.db"}, "give --db postgres://"},
		{[]string{"--nodes", "0"}, "--nodes 0"},
		{[]string{"--nodes", "2", "--db", "postgres://127.0.0.1:1/x", "--scenario", "udp"}, "TCP only"},
		{[]string{"--nodes", "2", "--db", "postgres://127.0.0.1:1/x", "--target", "127.0.0.1:3000"}, "not with --target"},
		{[]string{"--db-reset", "--db", "x.db"}, "--db-reset applies"},
		{[]string{"--db-reset", "--db", "postgres://127.0.0.1:1/x", "--target", "127.0.0.1:3000"}, "--db-reset"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"bench"}, tc.args...), &stdout, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q: want failure mentioning %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// inlet bench --db postgres://… runs its servers on that database: two nodes
// behind the bench's proxy take acknowledged devices, every message acked is
// stored once, and the database's own accounting (read through the postgres
// package) agrees. A database that holds rows is refused without --db-reset,
// and emptied with it; a bench's later run empties the rows of its earlier one.
func TestBenchPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and five servers, and sends load for a second each")
	}
	url := pgtest.URL(t)
	devices := func() (n int, msgs int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := postgres.Open(ctx, url, postgres.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		devs, err := s.Devices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range devs {
			msgs += d.Messages
		}
		return len(devs), msgs
	}

	rep := benchJSON(t, "--db", url, "--nodes", "2", "--scenario", "ack", "--devices", "6", "--duration", "1s")
	if rep.Store != "postgres" || rep.Nodes != 2 || len(rep.Runs) != 1 {
		t.Fatalf("report %+v: want one run of 2 nodes on postgres", rep)
	}
	r := rep.Runs[0]
	checkAcked(t, r)
	if n, msgs := devices(); n != 6 || msgs != *r.Stored {
		t.Errorf("database: %d devices with %d messages, want 6 with the %d stored", n, msgs, *r.Stored)
	}
	if s := r.Server; s == nil || s.Commits < 2 {
		t.Errorf("server counters %+v: want the commits of both nodes", s)
	}

	args := []string{"bench", "--server-bin", inletBinary(t), "--db", url, "--scenario", "stream", "--devices", "2", "--duration", "1s"}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "--db-reset") {
		t.Fatalf("inlet %s on a database with rows: exit %d, want a refusal naming --db-reset\n%s",
			strings.Join(args, " "), code, stderr.String())
	}
	if n, _ := devices(); n != 6 {
		t.Fatalf("the refused bench changed the database: %d devices, want 6", n)
	}

	rep = benchJSON(t, "--db", url, "--db-reset", "--scenario", "stream", "--devices", "2", "--duration", "1s")
	r = rep.Runs[0]
	checkCounts(t, r)
	if *r.Loss != 0 {
		t.Errorf("stream over TCP into PostgreSQL lost %d of %d", *r.Loss, r.Sent)
	}
	if n, msgs := devices(); n != 2 || msgs != *r.Stored {
		t.Errorf("after --db-reset: %d devices with %d messages, want 2 with the %d stored", n, msgs, *r.Stored)
	}

	// --baseline on an empty database, without --db-reset: the plain stream
	// runs first, then ack, which starts from an empty schema again (the
	// plain run's rows are the bench's own).
	url = pgtest.URL(t)
	rep = benchJSON(t, "--db", url, "--scenario", "ack", "--baseline", "--devices", "2", "--duration", "1s")
	if len(rep.Runs) != 2 || rep.Runs[0].Target != "plain" || rep.Runs[1].Target != "inlet" {
		t.Fatalf("runs %+v, want plain then inlet", rep.Runs)
	}
	checkCounts(t, rep.Runs[0])
	r = rep.Runs[1]
	checkAcked(t, r)
	if n, msgs := devices(); n != 2 || msgs != *r.Stored {
		t.Errorf("after two runs: %d devices with %d messages, want 2 with the last run's %d", n, msgs, *r.Stored)
	}
}
