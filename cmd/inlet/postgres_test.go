package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/internal/pgtest"
	"github.com/inletdev/inlet/postgres"
	"github.com/inletdev/inlet/record"
)

// balancer is a round-robin TCP load balancer on loopback that keeps the
// client's address, as IPVS or a cloud network balancer does: it connects to
// the backend from the client's own IP (any 127.0.0.0/8 address is local).
type balancer struct {
	ln       net.Listener
	backends []string
	n        atomic.Int64
	wg       sync.WaitGroup
}

func startBalancer(t *testing.T, backends ...string) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{ln: ln, backends: backends}
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

func (b *balancer) addr() string { return b.ln.Addr().String() }

func (b *balancer) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		backend := b.backends[int(b.n.Add(1)-1)%len(b.backends)]
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer c.Close()
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: c.RemoteAddr().(*net.TCPAddr).IP}}
			s, err := d.Dial("tcp", backend)
			if err != nil {
				return
			}
			defer s.Close()
			done := make(chan struct{})
			go func() {
				io.Copy(c, s)
				close(done)
			}()
			io.Copy(s, c)
			s.(*net.TCPConn).CloseWrite()
			<-done
		}()
	}
}

// The tutorial device's counter, with loss, a duplicate, late arrivals and a
// reboot: what one message at a time sends.
func tutorialCounter() []int {
	var out []int
	for v := 1; v <= 60; v++ {
		switch {
		case v >= 20 && v <= 22: // lost
		case v == 40:
			out = append(out, 40, 40)
		case v == 50:
			out = append(out, 52, 51, 50)
		case v == 51 || v == 52:
		default:
			out = append(out, v)
		}
	}
	for v := 1; v <= 20; v++ {
		out = append(out, v)
	}
	return out
}

// sendPaced sends each value the tutorial way (connect, line, close) to addr
// from src, waiting until it is stored before the next, as a device sending
// every few seconds does.
func sendPaced(t *testing.T, r *postgres.Store, src, addr string, values []int) {
	t.Helper()
	for i, v := range values {
		if err := sendOnce(src, addr, fmt.Sprintf("%d\r\n", v)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("message %d stored", i+1), 30*time.Second, func() bool {
			ds, err := r.Devices(context.Background())
			return err == nil && len(ds) == 1 && ds[0].Messages == int64(i+1)
		})
	}
}

// devicesJSON is `inlet devices --db url --format json` without the times,
// which differ between runs.
func devicesJSON(t *testing.T, url string) []record.Device {
	t.Helper()
	out, code := runCmd(t, "devices", "--db", url, "--format", "json")
	if code != 0 {
		t.Fatalf("inlet devices --db %s: exit %d", url, code)
	}
	var ds []record.Device
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("devices json: %v\n%s", err, out)
	}
	for i := range ds {
		ds[i].FirstSeen, ds[i].LastSeen = "", ""
	}
	return ds
}

// Two real nodes on one PostgreSQL database behind a round-robin balancer: a
// tutorial device's connect-per-message traffic, every other message on the
// other node, gets the accounting one node gives it; export, devices and tail
// read the database.
func TestTwoNodesPostgres(t *testing.T) {
	ctx := context.Background()
	one, two := pgtest.URL(t), pgtest.URL(t)
	args := []string{"--tcp", "127.0.0.1:0", "--udp", "", "--http", ""}
	single := startBinary(t, append(args, "--db", one)...)
	a := startBinary(t, append(args, "--db", two)...)
	b := startBinary(t, append(args, "--db", two)...)
	if strings.Contains(a.ready.DB, "@") && !strings.HasPrefix(a.ready.DB, "postgres://postgres@") {
		t.Fatalf("ready line db %q", a.ready.DB)
	}
	lb := startBalancer(t, a.ready.TCP, b.ready.TCP)
	r1, err := postgres.Open(ctx, one, postgres.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := postgres.Open(ctx, two, postgres.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()

	values := tutorialCounter()
	sendPaced(t, r1, "127.0.0.61", single.ready.TCP, values)
	sendPaced(t, r2, "127.0.0.61", lb.addr(), values)
	if lb.n.Load() != int64(len(values)) {
		t.Fatalf("the balancer passed %d connections, want %d", lb.n.Load(), len(values))
	}

	want, got := devicesJSON(t, one), devicesJSON(t, two)
	if len(want) != 1 || want[0].Kind != "counter" || want[0].Missing == nil || *want[0].Missing != 3 || *want[0].Resets != 1 {
		t.Fatalf("one node: %+v", want)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("two nodes: %+v\none node: %+v", got, want)
	}

	// export and tail read the same rows as the store, in id order.
	out, code := runCmd(t, "export", "--db", two, "--format", "csv")
	if code != 0 || strings.Count(out, "\n") != len(values)+1 || !strings.Contains(out, "127.0.0.61") {
		t.Fatalf("export --db postgres: exit %d\n%s", code, out)
	}
	out, code = runCmd(t, "tail", "--db", two, "-n", "3")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.Contains(lines[2], "20") {
		t.Fatalf("tail --db postgres -n 3: exit %d\n%s", code, out)
	}
	for _, s := range []*server{single, a, b} {
		s.stop(t, syscall.SIGTERM)
	}
}

// The live stream of one node delivers what another node commits, every row
// once, and a consumer that reconnects to the other node with its last id
// carries on without a gap or a repeat.
func TestStreamAcrossNodes(t *testing.T) {
	url := pgtest.URL(t)
	ca, cb := testConfig(t), testConfig(t)
	ca.DB, cb.DB = url, url
	a, b := MustRun(t, ca), MustRun(t, cb)
	stream := func(m *Main, after string) (<-chan [2]string, func()) {
		u := htBase(m) + "/api/stream"
		if after != "" {
			u += "?after_id=" + after
		}
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(u)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream: %v %v", err, resp)
		}
		return sseEvents(resp.Body), func() { resp.Body.Close() }
	}
	next := func(evs <-chan [2]string) [2]string {
		select {
		case ev := <-evs:
			return ev
		case <-time.After(20 * time.Second):
			t.Fatal("no stream event within 20 s")
		}
		return [2]string{}
	}
	evs, stop := stream(b, "")
	for n := 1; n <= 10; n++ { // on node a only
		if err := sendOnce("127.0.0.81", a.tcpAddr(), fmt.Sprintf("%d\r\n", n)); err != nil {
			t.Fatal(err)
		}
	}
	// Every payload once, ids rising (back-to-back connections may commit
	// in another order than sent).
	last := "0"
	got := make(map[string]bool)
	take := func(n int) {
		ev := next(evs)
		var rec struct {
			ID      int64  `json:"id"`
			Payload string `json:"payload"`
		}
		if err := json.Unmarshal([]byte(ev[1]), &rec); err != nil || fmt.Sprint(rec.ID) != ev[0] {
			t.Fatalf("event %v: %v", ev, err)
		}
		if prev, _ := strconv.ParseInt(last, 10, 64); rec.ID <= prev || got[rec.Payload] {
			t.Fatalf("event %d: %v after id %s, payloads so far %v", n, ev, last, got)
		}
		got[rec.Payload], last = true, ev[0]
	}
	for n := 1; n <= 10; n++ {
		take(n)
	}
	stop()
	// Reconnect to node a after the last id seen; more arrive on both nodes.
	evs, stop = stream(a, last)
	defer stop()
	for n := 11; n <= 20; n++ {
		m := a
		if n%2 == 0 {
			m = b
		}
		if err := sendOnce("127.0.0.81", m.tcpAddr(), fmt.Sprintf("%d\r\n", n)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the message stored", 20*time.Second, func() bool {
			return a.Stats.Committed.Load()+b.Stats.Committed.Load() >= int64(n)
		})
	}
	for n := 11; n <= 20; n++ {
		take(n)
	}
	for n := 1; n <= 20; n++ {
		if !got[fmt.Sprint(n)] {
			t.Fatalf("payload %d never streamed: %v", n, got)
		}
	}
	select {
	case ev := <-evs:
		t.Fatalf("an event more than was sent: %v", ev)
	case <-time.After(600 * time.Millisecond):
	}
}

// Two real nodes behind the balancer take acknowledged devices through a
// SIGKILL of one node (restarted on its port) and an immediate stop of
// PostgreSQL: every reading is acknowledged in the end, and stored exactly once.
func TestTwoNodesSurviveKills(t *testing.T) {
	url := pgtest.URL(t)
	ports := make([]string, 2)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().String()
		ln.Close()
	}
	node := func(i int) *server {
		return startBinary(t, "--tcp", ports[i], "--udp", "", "--http", "", "--db", url, "--log-level", "warn")
	}
	a, _ := node(0), node(1)
	lb := startBalancer(t, ports...)
	const devs, count = 12, 150
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	send := exec.CommandContext(ctx, inletBinary(t), "send", "--addr", lb.addr(), "--ack", "--mode", "tutorial",
		"--device", "esp", "--devices", fmt.Sprint(devs), "--count", fmt.Sprint(count), "--every", "5ms",
		"--outbox", t.TempDir())
	var out strings.Builder
	send.Stdout, send.Stderr = &out, &out
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { sent <- send.Wait() }()

	r, err := postgres.Open(context.Background(), url, postgres.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stored := func() int64 {
		id, _ := r.LastID(context.Background())
		return id
	}
	waitFor(t, "a third of the readings stored", time.Minute, func() bool { return stored() > devs*count/3 })
	a.cmd.Process.Kill()
	<-a.exited
	a.exited <- nil
	time.Sleep(300 * time.Millisecond)
	node(0)
	waitFor(t, "two thirds of the readings stored", time.Minute, func() bool { return stored() > 2*devs*count/3 })
	pgtest.Restart(t, "immediate")
	if err := <-sent; err != nil {
		t.Fatalf("inlet send: %v\n%s", err, out.String())
	}
	counts := make(map[string]map[int64]int)
	err = r.Messages(context.Background(), inlet.Query{}, func(m *inlet.Stored) error {
		if counts[m.Device] == nil {
			counts[m.Device] = make(map[int64]int)
		}
		counts[m.Device][m.Seq]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != devs {
		t.Fatalf("%d devices stored, want %d", len(counts), devs)
	}
	for d, seqs := range counts {
		for seq := int64(1); seq <= count; seq++ {
			if seqs[seq] != 1 {
				t.Fatalf("device %s seq %d stored %d times", d, seq, seqs[seq])
			}
		}
		if len(seqs) != count {
			t.Fatalf("device %s: %d seqs stored, want %d", d, len(seqs), count)
		}
	}
	ds, err := r.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Messages != count || d.Missing != 0 || d.Gaps != 0 {
			t.Errorf("device %s: %d messages, missing %d, gaps %d", d.ID, d.Messages, d.Missing, d.Gaps)
		}
	}
}
