package loadgen_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet/internal/loadgen"
)

func mustScenario(t *testing.T, name string) *loadgen.Scenario {
	t.Helper()
	sc, err := loadgen.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func mustBaseline(t *testing.T) *loadgen.Baseline {
	t.Helper()
	b, err := loadgen.ListenBaseline("127.0.0.1:0", "127.0.0.1:0", 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	b.Serve()
	t.Cleanup(func() { b.Close() })
	return b
}

// waitCount polls until n reaches want; it never asserts a time, it only gives up.
func waitCount(t *testing.T, what string, want int64, n func() int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, n(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := n(); got != want {
		t.Fatalf("%s: %d, want %d", what, got, want)
	}
}

func run(t *testing.T, cfg loadgen.Config) loadgen.Result {
	t.Helper()
	g, err := loadgen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

// Every scenario sends exactly --count messages, and the baseline counts them all.
func TestScenariosAgainstBaseline(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		count    int64
		rate     float64
	}{
		{"tutorial", 200, 0},
		{"stream", 20000, 0},
		{"stream", 40, 400}, // a flush per paced batch
		{"udp", 1000, 0},
	} {
		b := mustBaseline(t)
		sc := mustScenario(t, tc.scenario)
		addr := b.TCPAddr()
		if sc.Transport == "udp" {
			addr = b.UDPAddr()
		}
		res := run(t, loadgen.Config{
			Scenario: sc, Target: netip.MustParseAddrPort(addr), Devices: 4,
			Duration: time.Minute, Count: tc.count, Rate: tc.rate, SenderCPU: -1,
		})
		if res.Sent != tc.count || res.Errors != 0 {
			t.Errorf("%s: sent %d with %d errors (%s), want %d", tc.scenario, res.Sent, res.Errors, res.FirstError, tc.count)
		}
		waitCount(t, tc.scenario+" counted", tc.count, func() int64 { return b.Counts().Messages(sc.Transport) })
		if tc.scenario == "tutorial" {
			if c := b.Counts().TCPConns; c != tc.count {
				t.Errorf("tutorial: %d connections, want one per message (%d)", c, tc.count)
			}
		}
	}
}

// The tutorial's wire format: one line per connection, counters from 1 per
// device, each device on its own loopback address.
func TestTutorialFormat(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var (
		mu  sync.Mutex
		got = make(map[string][]string) // source IP to lines
		wg  sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, _ := io.ReadAll(c)
			c.Close()
			ip := c.RemoteAddr().(*net.TCPAddr).IP.String()
			mu.Lock()
			got[ip] = append(got[ip], string(b))
			mu.Unlock()
		}
	})
	// A paced run, so that each device's connections arrive in order.
	run(t, loadgen.Config{
		Scenario: mustScenario(t, "tutorial"), Target: netip.MustParseAddrPort(ln.Addr().String()),
		Devices: 2, Duration: time.Minute, Count: 6, Rate: 50, SenderCPU: -1,
	})
	ln.Close()
	wg.Wait()
	want := map[string][]string{
		"127.0.0.10": {"1\r\n", "2\r\n", "3\r\n"},
		"127.0.0.11": {"1\r\n", "2\r\n", "3\r\n"},
	}
	for ip, lines := range want {
		if strings.Join(got[ip], "|") != strings.Join(lines, "|") {
			t.Errorf("from %s: %q, want %q (all: %q)", ip, got[ip], lines, got)
		}
	}
}

// The tutorial's datagram: the counter, NUL-padded to 10 bytes.
func TestUDPFormat(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	run(t, loadgen.Config{
		Scenario: mustScenario(t, "udp"), Target: netip.MustParseAddrPort(pc.LocalAddr().String()),
		Duration: time.Minute, Count: 3, SenderCPU: -1,
	})
	var got []string
	buf := make([]byte, 100)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 3 {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if ip := from.(*net.UDPAddr).IP.String(); ip != "127.0.0.10" {
			t.Errorf("from %s, want 127.0.0.10", ip)
		}
		got = append(got, string(buf[:n]))
	}
	sort.Strings(got)
	want := []string{"1\x00\x00\x00\x00\x00\x00\x00\x00\x00", "2\x00\x00\x00\x00\x00\x00\x00\x00\x00", "3\x00\x00\x00\x00\x00\x00\x00\x00\x00"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("datagrams %q, want %q", got, want)
	}
}

// The generator only ever sends to this machine.
func TestResolveLoopback(t *testing.T) {
	ctx := context.Background()
	for _, addr := range []string{"192.0.2.1:3000", "8.8.8.8:53", "[2001:db8::1]:3000"} {
		if _, err := loadgen.ResolveLoopback(ctx, addr); err == nil || !strings.Contains(err.Error(), "not a loopback") {
			t.Errorf("%s: %v, want refused", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:3000", "[::1]:3000", "127.1.2.3:1"} {
		if _, err := loadgen.ResolveLoopback(ctx, addr); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:0", "127.0.0.1:x"} {
		if _, err := loadgen.ResolveLoopback(ctx, addr); err == nil {
			t.Errorf("%s: accepted", addr)
		}
	}
	if _, err := loadgen.New(loadgen.Config{
		Scenario: mustScenario(t, "stream"), Target: netip.MustParseAddrPort("192.0.2.1:3000"), Duration: time.Second,
	}); err == nil {
		t.Error("New accepted a target that is not loopback")
	}
}

func TestParseMetrics(t *testing.T) {
	m := loadgen.ParseMetrics([]byte(`# HELP inlet_messages_received_total Messages framed and queued for commit.
# TYPE inlet_messages_received_total counter
inlet_messages_received_total{transport="tcp"} 1.234567e+06
inlet_messages_received_total{transport="udp"} 3
inlet_messages_committed_total 1.23457e+06
inlet_rejected_total{reason="queue_full"} 7
inlet_rejected_total{reason="too_long"} 0
inlet_rejected_total{other="x",reason="refused"} 2 1700000000000
garbage
`))
	if got := m.Sum("inlet_messages_received_total"); got != 1234570 {
		t.Errorf("received %d", got)
	}
	if got := m.Sum("inlet_messages_committed_total"); got != 1234570 {
		t.Errorf("committed %d", got)
	}
	if !m.Has("inlet_rejected_total") || m.Has("inlet_rejected") {
		t.Error("Has")
	}
	got := m.ByLabel("inlet_rejected_total", "reason")
	if len(got) != 3 || got["queue_full"] != 7 || got["refused"] != 2 || got["too_long"] != 0 {
		t.Errorf("rejected %v", got)
	}
}

// Paced devices are spread over the interval, as a fleet's are: device i sends
// its first message no earlier than i/N of an interval after the start. (In
// step, every device sent at the same instant and the ack latency measured was
// that of the burst.) The test checks only that lower bound, which holds however
// slow the machine is.
func TestPacedDevicesSpreadOverTheInterval(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		first = map[string]time.Time{} // source address → first byte read
		wg    sync.WaitGroup
	)
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				var b [1]byte
				if _, err := io.ReadFull(c, b[:]); err != nil {
					return
				}
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				mu.Lock()
				if _, ok := first[host]; !ok {
					first[host] = time.Now()
				}
				mu.Unlock()
				io.Copy(io.Discard, c)
			})
		}
	})
	const devices, rate = 8, 2.0 // an interval of 500 ms
	start := time.Now()
	run(t, loadgen.Config{
		Scenario: mustScenario(t, "stream"), Target: netip.MustParseAddrPort(ln.Addr().String()),
		Devices: devices, Duration: 1500 * time.Millisecond, Rate: rate, SenderCPU: -1,
	})
	mu.Lock()
	defer mu.Unlock()
	if len(first) != devices {
		t.Fatalf("first messages from %d devices, want %d: %v", len(first), devices, first)
	}
	for i := range devices {
		src := netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + i)}).String()
		phase := time.Duration(float64(i) / devices / rate * float64(time.Second))
		if got := first[src].Sub(start); got < phase {
			t.Errorf("device %d (%s) sent its first message %v after the start, before its phase %v", i, src, got, phase)
		}
	}
}
