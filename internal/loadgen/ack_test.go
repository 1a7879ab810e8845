package loadgen_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet/internal/loadgen"
	"github.com/inletdev/inlet/wire"
)

// fakeAck is a small INLET/1 server: it answers a hello "OK last=0", then
// acknowledges, after each read, the highest seq read (refusing every errEvery-th
// seq with ERR instead). It checks what inlet would not: that the hello is the
// generator's, that each device's seqs run 1, 2, 3... and that no connection
// has more than window messages unacknowledged.
type fakeAck struct {
	t        *testing.T
	ln       net.Listener
	window   int64
	errEvery int64

	mu       sync.Mutex
	conns    int
	lines    int64
	errs     int64
	boots    map[string]bool
	next     map[string]int64 // device to the next seq expected
	problems []string
	wg       sync.WaitGroup
}

var (
	deviceRE = regexp.MustCompile(`^bench-[0-9]+$`)
	bootRE   = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

func newFakeAck(t *testing.T, window, errEvery int64) *fakeAck {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAck{t: t, ln: ln, window: window, errEvery: errEvery, boots: map[string]bool{}, next: map[string]int64{}}
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Go(func() { f.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeAck) problem(format string, args ...any) {
	f.mu.Lock()
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *fakeAck) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	hello, err := r.ReadString('\n')
	if err != nil {
		return
	}
	h, err := wire.ParseHello([]byte(strings.TrimSuffix(hello, "\n")))
	if err != nil || !deviceRE.MatchString(h.Device) || !bootRE.MatchString(h.Boot) || h.Token != "" {
		f.problem("hello %q", hello)
		return
	}
	dev := h.Device
	f.mu.Lock()
	f.conns++
	f.boots[h.Boot] = true
	if f.next[dev] == 0 {
		f.next[dev] = 1
	}
	f.mu.Unlock()
	if _, err := c.Write(wire.AppendOK(nil, 0)); err != nil {
		return
	}
	var acked, last int64 // per connection
	var out []byte
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		seq, payload, err := wire.ParseMessage([]byte(strings.TrimSuffix(line, "\n")))
		f.mu.Lock()
		f.lines++
		if err != nil || seq != f.next[dev] || string(payload) != strconv.FormatInt(seq, 10) {
			f.problems = append(f.problems, fmt.Sprintf("%s: line %q, want seq %d", dev, line, f.next[dev]))
		}
		f.next[dev] = seq + 1
		if acked == 0 {
			acked = seq - 1 // the connection's first message
		}
		if seq-acked > f.window {
			f.problems = append(f.problems, fmt.Sprintf("%s: seq %d sent with only %d acknowledged, window %d", dev, seq, acked, f.window))
		}
		refuse := f.errEvery > 0 && seq%f.errEvery == 0
		if refuse {
			f.errs++
		}
		f.mu.Unlock()
		if refuse {
			out = wire.AppendErr(out, seq, "too-long")
		} else {
			last = seq
		}
		if r.Buffered() == 0 {
			if last > 0 {
				out = wire.AppendAck(out, last)
				last = 0
			}
			acked = seq
			if _, err := c.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}
}

func TestAckScenarios(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		devices  int
		window   int
		count    int64
		rate     float64
		errEvery int64
	}{
		{"ack", 4, 8, 20000, 0, 0},
		{"ack", 3, 1, 300, 0, 0},
		{"ack", 2, 16, 400, 1000, 0}, // paced: a write per due batch
		{"ack", 4, 8, 2000, 0, 7},    // ERR lines, also for a device's last message
		{"ack-cpm", 4, 0, 200, 0, 0},
		{"ack-cpm", 2, 0, 40, 0, 5},
	} {
		name := fmt.Sprintf("%s/window=%d/rate=%g/err=%d", tc.scenario, tc.window, tc.rate, tc.errEvery)
		t.Run(name, func(t *testing.T) {
			window := int64(tc.window)
			if window == 0 {
				window = 1
			}
			f := newFakeAck(t, window, tc.errEvery)
			g, err := loadgen.New(loadgen.Config{
				Scenario: mustScenario(t, tc.scenario), Target: netip.MustParseAddrPort(f.ln.Addr().String()),
				Devices: tc.devices, Duration: time.Minute, Count: tc.count, Rate: tc.rate, SenderCPU: -1, Window: tc.window,
			})
			if err != nil {
				t.Fatal(err)
			}
			res, err := g.Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, p := range f.problems {
				t.Error(p)
			}
			if res.Sent != tc.count || f.lines != tc.count {
				t.Errorf("sent %d, server read %d, want %d", res.Sent, f.lines, tc.count)
			}
			if res.Acked != tc.count-f.errs || res.Errors != f.errs {
				t.Errorf("acked %d with %d errors (%s); server refused %d of %d", res.Acked, res.Errors, res.FirstError, f.errs, tc.count)
			}
			if tc.errEvery > 0 && (f.errs == 0 || !strings.Contains(res.FirstError, "too-long")) {
				t.Errorf("refused %d, first error %q", f.errs, res.FirstError)
			}
			if res.Latency.Samples != res.Acked || res.Latency.P50 < 0 || res.Latency.P99 < res.Latency.P50 || res.Latency.Max < res.Latency.P99 {
				t.Errorf("latency %+v for %d acked", res.Latency, res.Acked)
			}
			if len(f.boots) != 1 || !f.boots[g.Boot()] {
				t.Errorf("boots %v, want the run's one, %s", f.boots, g.Boot())
			}
			wantConns := tc.devices
			if tc.scenario == "ack-cpm" {
				wantConns = int(tc.count)
			}
			if f.conns != wantConns {
				t.Errorf("%d connections, want %d", f.conns, wantConns)
			}
		})
	}
}

// A server that answers nonsense and then goes away: the run still ends at its
// duration, and says what went wrong.
func TestAckUnanswered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		c, err := ln.Accept()
		ln.Close() // reconnects are refused
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		r.ReadString('\n')
		c.Write(wire.AppendOK(nil, 0))
		r.ReadString('\n')
		c.Write(wire.AppendAck(nil, 1))
		r.ReadString('\n')
		c.Write([]byte("nonsense\n")) // the generator hangs up on this
		for {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
		}
	})
	g, err := loadgen.New(loadgen.Config{
		Scenario: mustScenario(t, "ack"), Target: netip.MustParseAddrPort(ln.Addr().String()),
		Devices: 1, Duration: time.Second, Count: 3, Window: 1, SenderCPU: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Acked != 1 || res.Errors == 0 || !strings.Contains(res.FirstError, "nonsense") {
		t.Errorf("acked %d, %d errors, first %q", res.Acked, res.Errors, res.FirstError)
	}
}

// queueAck is an INLET/1 server with one committer of fixed service time, as
// inlet's writer is: each message is acknowledged svc after the previous one's
// acknowledgement or after its own arrival, whichever is later. A device's
// latency is then svc when the fleet's messages arrive spread out, and grows
// with the number of messages that arrive together: n at once wait n·svc/2 on
// average. It records what it measured itself: from reading each message to
// starting to write its ACK, a lower bound of what the device can see.
type queueAck struct {
	ln  net.Listener
	svc time.Duration
	in  chan queued
	wg  sync.WaitGroup

	mu   sync.Mutex
	own  []time.Duration
	errs []string
}

type queued struct {
	c   net.Conn
	seq int64
	at  time.Time
}

func newQueueAck(t *testing.T, svc time.Duration) *queueAck {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	q := &queueAck{ln: ln, svc: svc, in: make(chan queued, 1<<16)}
	stopped := make(chan struct{})
	q.wg.Go(q.commit)
	q.wg.Go(func() {
		var conns sync.WaitGroup
		defer func() { conns.Wait(); close(q.in) }()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { q.read(c, stopped) })
		}
	})
	t.Cleanup(func() { ln.Close(); close(stopped); q.wg.Wait() })
	return q
}

func (q *queueAck) read(c net.Conn, stopped chan struct{}) {
	defer c.Close()
	go func() { <-stopped; c.Close() }()
	r := bufio.NewReader(c)
	if _, err := r.ReadSlice('\n'); err != nil {
		return
	}
	if _, err := c.Write(wire.AppendOK(nil, 0)); err != nil {
		return
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		at := time.Now()
		seq, _, err := wire.ParseMessage(bytes.TrimSuffix(line, []byte{'\n'}))
		if err != nil {
			q.mu.Lock()
			q.errs = append(q.errs, fmt.Sprintf("line %q: %v", line, err))
			q.mu.Unlock()
			return
		}
		q.in <- queued{c, seq, at}
	}
}

// commit acknowledges the messages one at a time, in order of arrival, on a
// schedule of its own (not the time it woke up), so that its lateness does not
// accumulate.
func (q *queueAck) commit() {
	var done time.Time
	for m := range q.in {
		done = later(done, m.at).Add(q.svc)
		time.Sleep(time.Until(done))
		own := time.Since(m.at)
		// Counted before the ACK goes out: once the device has it, the bench
		// may end and the test read q.own.
		q.mu.Lock()
		q.own = append(q.own, own)
		q.mu.Unlock()
		m.c.Write(wire.AppendAck(nil, m.seq)) // a closed connection is the device's business
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// The ack latency reported is what a device of a fleet sees, from its write to
// the ACK covering the message. Against a server whose latency is known (one
// committer, a fixed time per message), devices paced at a rate must see about
// that time: sending in step would make them queue behind one another, each
// burst's messages waiting n·svc/2 on average (issue 15: the bench's p50 was 3x
// that of a fleet client).
func TestAckLatencyIsTheDevices(t *testing.T) {
	const (
		devices = 25
		rate    = 5.0                  // one message per device every 200 ms
		svc     = 4 * time.Millisecond // 25 devices in step: 4 to 100 ms, p50 ≈ 52 ms
	)
	q := newQueueAck(t, svc)
	res := run(t, loadgen.Config{
		Scenario: mustScenario(t, "ack"), Target: netip.MustParseAddrPort(q.ln.Addr().String()),
		Devices: devices, Duration: 2 * time.Second, Rate: rate, SenderCPU: -1,
	})
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.errs {
		t.Error(e)
	}
	sort.Slice(q.own, func(i, j int) bool { return q.own[i] < q.own[j] })
	if len(q.own) == 0 || res.Acked != int64(len(q.own)) || res.Latency.Samples != res.Acked {
		t.Fatalf("acked %d, %d latencies, server acknowledged %d", res.Acked, res.Latency.Samples, len(q.own))
	}
	own := q.own[len(q.own)/2]
	l := res.Latency
	t.Logf("p50 %v, p99 %v, max %v; the server's own p50 %v, service time %v", l.P50, l.P99, l.Max, own, svc)
	// Never less than the server's own time (from reading the message to
	// writing its ACK), which is at least the service time.
	if l.P50 < svc || l.P50 < own-own/100 {
		t.Errorf("p50 %v, below the service time %v or the server's own p50 %v: the bench stamps the send too late", l.P50, svc, own)
	}
	// In step the median device waits behind half the fleet: 13 service times.
	// Spread out it waits its own; a loaded test machine adds scheduling delay,
	// so the bound is five service times.
	if l.P50 > 5*svc {
		t.Errorf("p50 %v, more than 5x the service time %v (the server's own p50 %v): the devices queue behind each other", l.P50, svc, own)
	}
}
