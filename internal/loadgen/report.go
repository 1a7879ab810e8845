package loadgen

import (
	"fmt"
	"os"
)

// Report is the --json output: every number of every run.
type Report struct {
	Scenario     string       `json:"scenario"`
	Transport    string       `json:"transport"`
	Devices      int          `json:"devices"`
	DurationS    float64      `json:"duration_s"`
	Count        int64        `json:"count,omitempty"`
	RatePerDev   float64      `json:"rate_per_device,omitempty"` // 0: as fast as possible
	UDPSenderCPU int          `json:"udp_sender_cpu"`            // -1: not pinned
	Window       int          `json:"window,omitempty"`          // ack: the most unacknowledged messages per connection
	Plain        string       `json:"plain_scenario,omitempty"`  // acknowledged scenarios with --baseline: the plain run's scenario
	TLSVersion   string       `json:"tls_version,omitempty"`     // --tls: "1.2" or "1.3"
	TLSResume    bool         `json:"tls_resume,omitempty"`      // --tls-resume
	Store        string       `json:"store,omitempty"`           // the started servers' database: "sqlite" or "postgres"
	Nodes        int          `json:"nodes,omitempty"`           // inlet serve started per run (more than one: behind a round-robin TCP proxy)
	Order        string       `json:"order"`
	Runs         []RunReport  `json:"runs"`
	Ratio        *RatioReport `json:"ratio,omitempty"` // inlet ÷ baseline (or ÷ plain), with --baseline
}

// RunReport is one receiver's numbers. Pointers are numbers that cannot be known
// for an inlet started elsewhere (--target).
type RunReport struct {
	Target          string           `json:"target"`   // "inlet", "baseline", "plain" (inlet under the plain scenario) or "no-tls" (inlet without TLS)
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
	// Bytes the receiver wrote to storage (write_bytes of /proc/<pid>/io) from
	// the start of the load until the last message was stored, and that over the
	// messages stored. 0 for a database on tmpfs.
	DiskWriteBytes  *int64   `json:"disk_write_bytes,omitempty"`
	DiskBytesPerMsg *float64 `json:"disk_bytes_per_msg,omitempty"`
	// Acknowledged scenarios only: messages acknowledged, per second of load
	// (the load ends when the last ACK has been read), and the ack latency.
	Acked     *int64         `json:"acked,omitempty"`
	AckedPerS *float64       `json:"acked_per_s,omitempty"`
	Latency   *LatencyReport `json:"ack_latency_ms,omitempty"`
	// TLS runs only: the version, the handshakes the devices completed, how
	// many of them resumed a session, and handshakes per second of load.
	TLS               string   `json:"tls,omitempty"`
	TLSHandshakes     *int64   `json:"tls_handshakes,omitempty"`
	TLSResumed        *int64   `json:"tls_resumed,omitempty"`
	TLSHandshakesPerS *float64 `json:"tls_handshakes_per_s,omitempty"`
	// What inlet serve says of itself (a server started here): its commits and,
	// for acknowledged messages, its own share of the ack latency.
	Server *ServerReport `json:"server,omitempty"`
	// Idle scenarios only: the held connections and what they cost the server.
	Idle *IdleReport `json:"idle,omitempty"`
	// With --plot: the rates, second by second, over the load and the drain.
	PerSecond []RateSample `json:"per_second,omitempty"`
}

// IdleReport is what the idle scenarios measure with every connection open and
// quiet. Pointers are unknown for a server not started here (--target), and
// goroutines for the baseline.
type IdleReport struct {
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

// ServerReport is read from inlet serve's /metrics at the end of a run (the
// server was started for it, so its counters cover the run): the means of its
// batch-size, commit-time and ack-latency histograms. The ack latency in the
// server runs from a message entering the commit queue to its ACK being handed
// to the connection: set against the devices' latency it shows what reading,
// the network and the device's side add.
type ServerReport struct {
	Commits      int64    `json:"commits"`
	BatchMean    *float64 `json:"batch_mean_msgs,omitempty"`
	CommitMeanMS *float64 `json:"commit_mean_ms,omitempty"`
	AckMeanMS    *float64 `json:"ack_latency_mean_ms,omitempty"` // acknowledged messages only
}

func serverMeans(m Metrics) *ServerReport {
	mean := func(name string, scale float64) *float64 {
		n := m.Value(name + "_count")
		if n <= 0 {
			return nil
		}
		v := m.Value(name+"_sum") / n * scale
		return &v
	}
	return &ServerReport{
		Commits:      m.Sum("inlet_batches_committed_total"),
		BatchMean:    mean("inlet_batch_size_messages", 1),
		CommitMeanMS: mean("inlet_commit_duration_seconds", 1000),
		AckMeanMS:    mean("inlet_ack_latency_seconds", 1000),
	}
}

// LatencyReport is the ack latency in milliseconds: for ack from writing a
// message to reading the ACK covering it, for ack-cpm from starting to connect
// to reading the ACK. Read from a histogram with buckets 0.4% wide; max is exact.
type LatencyReport struct {
	Samples int64   `json:"samples"`
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
}

type RatioReport struct {
	Against    string   `json:"against"` // "baseline"; "plain" for the acknowledged scenarios; "no-tls" with --tls
	StoredPerS *float64 `json:"stored_per_s,omitempty"`
	CPUPerMsg  *float64 `json:"cpu_us_per_msg,omitempty"`
	// Against plain: the acknowledged run's acked msgs/s ÷ the plain run's stored
	// msgs/s; against no-tls: acked msgs/s ÷ acked msgs/s.
	AckedPerS *float64 `json:"acked_per_s,omitempty"`
	// Idle scenarios: resident memory per held connection.
	KBPerConn *float64 `json:"rss_kb_per_conn,omitempty"`
}

func Ratios(runs []RunReport) *RatioReport {
	var in, base *RunReport
	for i := range runs {
		switch runs[i].Target {
		case "inlet":
			in = &runs[i]
		case "baseline", "plain", "no-tls":
			base = &runs[i]
		}
	}
	if in == nil || base == nil {
		return nil
	}
	r := &RatioReport{
		Against:    base.Target,
		StoredPerS: ratio(in.StoredPerS, base.StoredPerS),
		CPUPerMsg:  ratio(in.CPUMicrosPerMsg, base.CPUMicrosPerMsg),
	}
	switch {
	case base.Target == "plain":
		r.AckedPerS = ratio(in.AckedPerS, base.StoredPerS)
	case base.AckedPerS != nil:
		r.AckedPerS = ratio(in.AckedPerS, base.AckedPerS)
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

func (r *RunReport) RejectedTotal() int64 {
	var n int64
	for _, v := range r.Rejected {
		n += v
	}
	return n
}

// writePlot writes every run's per-second rates as an SVG chart.
func WritePlot(path string, rep *Report) error {
	title := fmt.Sprintf("inlet bench: %s, %d devices, %gs", rep.Scenario, rep.Devices, rep.DurationS)
	if rep.RatePerDev > 0 {
		title += fmt.Sprintf(", %g msgs/s per device", rep.RatePerDev)
	}
	if rep.Window > 0 {
		title += fmt.Sprintf(", window %d", rep.Window)
	}
	p := Plot{Title: title, XLabel: "seconds since the start of the load", YLabel: "messages per second"}
	for _, r := range rep.Runs {
		prefix := ""
		if len(rep.Runs) > 1 {
			prefix = r.Target + " " + r.Scenario + " "
		}
		var sent, stored, acked []Point
		for _, s := range r.PerSecond {
			sent = append(sent, Point{X: s.T, Y: s.Sent})
			if s.Stored != nil {
				stored = append(stored, Point{X: s.T, Y: *s.Stored})
			}
			if s.Acked != nil {
				acked = append(acked, Point{X: s.T, Y: *s.Acked})
			}
		}
		p.Series = append(p.Series, Series{Name: prefix + "sent", Points: sent})
		word := "stored"
		if r.Target == "baseline" {
			word = "counted"
		}
		p.Series = append(p.Series, Series{Name: prefix + word, Points: stored, Dashed: true})
		if r.Acked != nil {
			p.Series = append(p.Series, Series{Name: prefix + "acked", Points: acked})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := p.WriteSVG(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return nil
}
