package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/record"
)

// ackClient is a raw INLET/1 client over a real socket, for protocol tests.
type ackClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialAck(t *testing.T, addr, hello string) (*ackClient, string) {
	t.Helper()
	c := dialFrom(t, "", addr)
	t.Cleanup(func() { c.Close() })
	a := &ackClient{t: t, c: c, r: bufio.NewReader(c)}
	a.send(hello)
	return a, a.line()
}

func (a *ackClient) send(lines ...string) {
	a.t.Helper()
	if _, err := io.WriteString(a.c, strings.Join(lines, "")); err != nil {
		a.t.Fatal(err)
	}
}

// line reads one answer line from the server, without its newline.
func (a *ackClient) line() string {
	a.t.Helper()
	a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := a.r.ReadString('\n')
	if err != nil {
		a.t.Fatalf("reading the server's answer: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

// ackedUpTo reads answers until an ACK of at least seq, returning every line.
func (a *ackClient) ackedUpTo(seq int64) []string {
	a.t.Helper()
	var lines []string
	for {
		l := a.line()
		lines = append(lines, l)
		if n, ok := strings.CutPrefix(l, "ACK "); ok {
			if v, _ := strconv.ParseInt(n, 10, 64); v >= seq {
				return lines
			}
		}
	}
}

func TestAckedPipelineDuplicatesGaps(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)

	a, ok := dialAck(t, m.tcpAddr(), "INLET/1 id=sensor-1 boot=a1\n")
	if ok != "INLET/1 OK last=0" {
		t.Fatalf("hello answer %q", ok)
	}
	// A window of 64 pipelined messages: acks may be coalesced but must end at 64.
	var lines []string
	for i := 1; i <= 64; i++ {
		lines = append(lines, fmt.Sprintf("%d t=%d\n", i, i))
	}
	a.send(lines...)
	answers := a.ackedUpTo(64)
	last := int64(0)
	for _, l := range answers {
		n, ok := strings.CutPrefix(l, "ACK ")
		if !ok {
			t.Fatalf("unexpected answer %q", l)
		}
		v, _ := strconv.ParseInt(n, 10, 64)
		if v <= last {
			t.Fatalf("acks not increasing: %v", answers)
		}
		last = v
	}
	t.Logf("64 pipelined messages answered with %d ACK lines", len(answers))

	// A resend of 10..12 (an ACK lost, say) is acknowledged and not stored again;
	// 70 opens a gap 65..69; 66 fills part of it.
	a.send("10 t=10\n11 t=11\n12 t=12\n")
	a.ackedUpTo(12)
	a.send("70 t=70\n")
	a.ackedUpTo(70)
	a.send("66 t=66\n")
	if got := a.line(); got != "ACK 66" {
		t.Fatalf("fill answered %q", got)
	}
	a.c.Close()

	// A new connection: the hello's last= is the highest seq below which nothing
	// is missing (64), so the device resends 65.. and nothing it lacks is dropped.
	b, ok := dialAck(t, m.tcpAddr(), "INLET/1 id=sensor-1 boot=a1\n")
	if ok != "INLET/1 OK last=64" {
		t.Fatalf("second hello answer %q, want last=64", ok)
	}
	b.send("65 t=65\n67 t=67\n68 t=68\n69 t=69\n70 t=70\n")
	b.ackedUpTo(70)
	b.c.Close()
	c, ok := dialAck(t, m.tcpAddr(), "INLET/1 id=sensor-1 boot=a1\n")
	if ok != "INLET/1 OK last=70" {
		t.Fatalf("third hello answer %q, want last=70", ok)
	}
	// A new boot starts a new sequence at 1.
	d, ok := dialAck(t, m.tcpAddr(), "INLET/1 id=sensor-1 boot=b2 token=anything\n")
	if ok != "INLET/1 OK last=0" {
		t.Fatalf("new boot answer %q", ok)
	}
	d.send("1 t=1\n")
	d.ackedUpTo(1)
	c.c.Close()
	d.c.Close()
	MustClose(t, m)

	ms := messages(t, cfg.DB, inlet.Query{Device: "sensor-1"})
	seen := make(map[string]int)
	for _, msg := range ms {
		seen[fmt.Sprintf("%s/%d", msg.Boot, msg.Seq)]++
		if want := fmt.Sprintf("t=%d", msg.Seq); string(msg.Payload) != want {
			t.Errorf("seq %d payload %q", msg.Seq, msg.Payload)
		}
		if msg.Transport != inlet.TCP || msg.Device != "sensor-1" {
			t.Errorf("row %+v", msg)
		}
	}
	if len(ms) != 71 {
		t.Errorf("stored %d rows, want 70 of boot a1 and 1 of b2", len(ms))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s stored %d times", k, n)
		}
	}
	dev := devices(t, cfg.DB)["sensor-1"]
	if dev.Messages != 71 || dev.Duplicates != 4 || dev.Gaps != 0 || dev.Missing != 0 || dev.Resets != 1 || dev.LastBoot != "b2" {
		t.Errorf("device %+v: want 71 messages, 4 duplicates (10,11,12,70), no gaps left, 1 reset", dev)
	}
	if n := m.Stats.Duplicates.Load(); n != 4 {
		t.Errorf("duplicates counted %d, want 4", n)
	}

	// inlet devices shows each boot's sequence state.
	out, _ := runCmd(t, "devices", "--db", cfg.DB, "--format", "json")
	var recs []record.Device
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || len(recs[0].Boots) != 2 || recs[0].Boots[0].Boot != "a1" || recs[0].Boots[0].LastSeq != 70 ||
		recs[0].Boots[0].Durable != 70 || recs[0].Boots[0].Messages != 70 || recs[0].Boots[1].LastSeq != 1 {
		t.Errorf("devices json: %s", out)
	}
	out, _ = runCmd(t, "devices", "--db", cfg.DB)
	if !strings.Contains(out, "last_seq") || !strings.Contains(out, "a1") {
		t.Errorf("devices table:\n%s", out)
	}
}

// The connect-per-message acknowledged device: hello, one message, wait for the
// ACK, close; 16 of them at once.
func TestAckedConnectPerMessage(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.ConnRate = 0 // 16 devices on one address, connecting as fast as they can: no --max-conn-rate
	m := MustRun(t, cfg)
	errs := make(chan error, 16)
	for d := range 16 {
		go func() {
			for n := 1; n <= 20; n++ {
				c, err := net.Dial("tcp", m.tcpAddr())
				if err != nil {
					errs <- err
					return
				}
				fmt.Fprintf(c, "INLET/1 id=cpm-%d boot=b1\n%d %d\n", d, n, n)
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				r := bufio.NewReader(c)
				hello, _ := r.ReadString('\n')
				ack, err := r.ReadString('\n')
				c.Close()
				if hello != fmt.Sprintf("INLET/1 OK last=%d\n", n-1) || ack != fmt.Sprintf("ACK %d\n", n) {
					errs <- fmt.Errorf("device %d message %d: %q %q %v", d, n, hello, ack, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	MustClose(t, m)
	ds := devices(t, cfg.DB)
	for d := range 16 {
		if dev := ds[fmt.Sprintf("cpm-%d", d)]; dev.Messages != 20 || dev.Gaps != 0 || dev.Duplicates != 0 {
			t.Errorf("device cpm-%d: %+v", d, dev)
		}
	}
}

func TestAckedUDP(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	c, err := net.Dial("udp", m.udpAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := func() string {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 64)
		n, err := c.Read(b)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		return string(b[:n])
	}
	for _, seq := range []int{1, 2, 2, 5} { // 2 repeated: acked again, stored once
		fmt.Fprintf(c, "INLET/1 id=sleepy boot=c0ffee seq=%d\ntemp=%d.5\n", seq, seq)
		if got := read(); got != fmt.Sprintf("ACK %d\n", seq) {
			t.Fatalf("seq %d answered %q", seq, got)
		}
	}
	fmt.Fprintf(c, "INLET/1 id=sleepy boot=c0ffee seq=6\n%s", strings.Repeat("y", 5000))
	if got := read(); got != "ERR 6 too-long\n" {
		t.Errorf("too long answered %q", got)
	}
	// A header without a newline: an empty reading, stored and acknowledged; it
	// must not wedge the store (payload is NOT NULL).
	fmt.Fprintf(c, "INLET/1 id=sleepy boot=c0ffee seq=7")
	if got := read(); got != "ACK 7\n" {
		t.Fatalf("header-only datagram answered %q", got)
	}
	MustClose(t, m)
	ms := messages(t, cfg.DB, inlet.Query{Device: "sleepy"})
	if got := payloads(ms); !slices.Equal(got, []string{"temp=1.5", "temp=2.5", "temp=5.5", ""}) {
		t.Errorf("stored %q", got)
	}
	if dev := devices(t, cfg.DB)["sleepy"]; dev.Gaps != 2 || dev.Missing != 3 || dev.Duplicates != 1 {
		t.Errorf("device %+v: want the gaps 3..4 and 6 (refused as too long), and one duplicate", dev)
	}
}
