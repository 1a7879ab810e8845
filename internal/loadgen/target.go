package loadgen

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/inletdev/inlet/postgres"
	_ "modernc.org/sqlite" // the "sqlite" driver, to count stored rows
)

// startInlet starts inlet serve for scenario sc on free loopback ports, with
// database db; with useTLS the devices go to its --tls port. With more than one
// node (PostgreSQL only) it starts that many on the same database and a
// round-robin TCP proxy in front of them, which the devices connect to.
func (b *Bench) startInlet(ctx context.Context, sc *Scenario, db string, useTLS bool) (*target, error) {
	var before int64
	var err error
	if postgres.IsURL(db) {
		// Later runs of this bench empty it again: the rows are its own.
		if err = preparePostgres(ctx, db, b.cfg.DBReset || b.pgUsed); err == nil {
			b.pgUsed = true
		}
	} else {
		before, err = rowsBefore(ctx, db)
	}
	if err != nil {
		return nil, err
	}
	// The load comes from loopback as fast as it can: --max-conn-rate, an
	// abuse limit per address, is not what is measured.
	args := []string{"serve", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", db, "--max-conn-rate", "0"}
	if sc.Idle {
		// The held connections must outlive the hold (those that have not sent
		// a line yet too); --max-conns (10,000 by default) must take every device.
		hold := (b.cfg.Duration + 2*time.Minute).String()
		args = append(args, "--idle-timeout", hold, "--first-line-timeout", hold,
			"--max-conns", strconv.Itoa(max(10000, b.devices+16)))
	}
	if useTLS {
		args = append(args, "--tls", "127.0.0.1:0", "--tls-cert", b.certFile, "--tls-key", b.keyFile)
		if sc.Idle {
			args = append(args, "--tls-idle-timeout", (b.cfg.Duration + 2*time.Minute).String())
		}
	}
	nodes := max(b.cfg.Nodes, 1)
	t := &target{countWord: "committed"}
	transport := sc.Transport
	var addrs, metricsURLs []string
	for i := range nodes {
		name := "inlet serve"
		if nodes > 1 {
			name = fmt.Sprintf("inlet serve (node %d)", i+1)
		}
		p, err := startChild(ctx, name, b.bin, args, b.serverCPUs)
		if err != nil {
			t.killAll()
			return nil, err
		}
		t.procs = append(t.procs, p)
		addr := p.ready.TCP
		switch {
		case useTLS:
			addr, transport = p.ready.TLS, "tls"
		case sc.Transport == "udp":
			addr = p.ready.UDP
		}
		if addr == "" || p.ready.HTTP == "" {
			t.killAll()
			return nil, fmt.Errorf("%s: ready line without %s and http addresses", name, transport)
		}
		addrs = append(addrs, addr)
		metricsURLs = append(metricsURLs, "http://"+p.ready.HTTP+"/metrics")
	}
	t.proc, t.addr = t.procs[0], addrs[0]
	if nodes > 1 {
		if t.proxy, err = startProxy(addrs); err != nil {
			t.killAll()
			return nil, err
		}
		t.addr = t.proxy.addr()
	}
	// The nodes' counters added up: totals, and means over all of them.
	scrape := func(ctx context.Context) (Metrics, error) {
		sum := Metrics{}
		for _, u := range metricsURLs {
			m, err := b.scrape(ctx, u)
			if err != nil {
				return nil, err
			}
			for k, v := range m {
				sum[k] += v
			}
		}
		return sum, nil
	}
	t.progress = func(ctx context.Context) (int64, int64, error) {
		m, err := scrape(ctx)
		if err != nil {
			return 0, 0, err
		}
		return m.Sum("inlet_messages_committed_total"), m.Sum("inlet_messages_received_total"), nil
	}
	t.gauges = func(ctx context.Context) (serverGauges, error) {
		m, err := scrape(ctx)
		if err != nil {
			return serverGauges{}, err
		}
		return serverGauges{Goroutines: m.Sum("go_goroutines"), Conns: m.Sum("inlet_connections_open"),
			StackBytes: m.Sum("go_memstats_stack_inuse_bytes"), HeapBytes: m.Sum("go_memstats_heap_inuse_bytes")}, nil
	}
	t.final = func(ctx context.Context, r *RunReport) error {
		m, err := scrape(ctx)
		if err != nil {
			return err
		}
		drops := m.Sum("inlet_udp_kernel_drops_total")
		r.KernelDrops = &drops
		r.Rejected = m.ByLabel("inlet_rejected_total", "reason")
		r.Server = serverMeans(m)
		return nil
	}
	t.stored = func(ctx context.Context) (int64, error) {
		if postgres.IsURL(db) {
			return countPostgres(ctx, db)
		}
		n, err := countRows(ctx, db)
		return n - before, err
	}
	return t, nil
}

// startBaseline starts the bare receiver (inlet bench-baseline).
func (b *Bench) startBaseline(ctx context.Context) (*target, error) {
	p, err := startChild(ctx, "inlet bench-baseline", b.bin, []string{"bench-baseline",
		"--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0"}, b.serverCPUs)
	if err != nil {
		return nil, err
	}
	tr := b.scenario.Transport
	t := &target{proc: p, procs: []*child{p}, addr: p.ready.TCP, countWord: "counted"}
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
	t.final = func(ctx context.Context, r *RunReport) error {
		c, err := b.counts(ctx, countsURL)
		if tr == "udp" {
			r.KernelDrops = &c.UDPKernelDrops
		}
		return err
	}
	// The counts it prints when it stops include every byte it read.
	t.stored = func(ctx context.Context) (int64, error) {
		var c Counts
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
func (b *Bench) external(ctx context.Context) (*target, error) {
	t := &target{addr: b.target, countWord: "stored"}
	if b.db == "" {
		return t, nil
	}
	count := countRows
	if postgres.IsURL(b.db) {
		count = countPostgres
	}
	before, err := count(ctx, b.db)
	if err != nil {
		return nil, err
	}
	t.progress = func(ctx context.Context) (int64, int64, error) {
		n, err := count(ctx, b.db)
		return n - before, n - before, err
	}
	t.stored = func(ctx context.Context) (int64, error) {
		n, err := count(ctx, b.db)
		return n - before, err
	}
	return t, nil
}

// get fetches a small document from a receiver's HTTP address.
func (b *Bench) get(ctx context.Context, url string) ([]byte, error) {
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

func (b *Bench) counts(ctx context.Context, url string) (Counts, error) {
	var c Counts
	body, err := b.get(ctx, url)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return c, fmt.Errorf("get %s: %w", url, err)
	}
	return c, nil
}

func (b *Bench) scrape(ctx context.Context, url string) (Metrics, error) {
	body, err := b.get(ctx, url)
	if err != nil {
		return nil, err
	}
	m := ParseMetrics(body)
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
