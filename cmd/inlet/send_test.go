package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet/internal/emulate"
	"github.com/inletdev/inlet/internal/fakeinlet"
)

// sendTestRun runs `inlet send args...` in-process and returns its stdout,
// stderr and exit status.
func sendTestRun(t *testing.T, ctx context.Context, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, append([]string{"send"}, args...), &out, &errb)
	t.Logf("inlet send %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

// sendTestReport parses the --json summary.
func sendTestReport(t *testing.T, stdout string) emulate.Report {
	t.Helper()
	var rep emulate.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("summary %q: %v", stdout, err)
	}
	return rep
}

// sendTestConn is one plain TCP connection as a receiver saw it.
type sendTestConn struct {
	n    int // accept order, from 0
	from string
	data []byte
}

// sendTestSink is a plain-mode TCP receiver: it records what each connection
// carried, by source address, in accept order.
type sendTestSink struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []*sendTestConn
	done  int // connections read to their end
	open  []net.Conn
}

func startSendTestSink(t *testing.T) *sendTestSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sendTestSink{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			s.mu.Lock()
			sc := &sendTestConn{n: len(s.conns), from: host}
			s.conns = append(s.conns, sc)
			s.open = append(s.open, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				b, _ := io.ReadAll(c)
				c.Close()
				s.mu.Lock()
				sc.data = b
				s.done++
				s.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *sendTestSink) addr() string { return s.ln.Addr().String() }

// wait returns the connections once n of them have ended.
func (s *sendTestSink) wait(t *testing.T, n int) []*sendTestConn {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d connections to end", n), 10*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.done >= n
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.conns)
}

// The tutorial sketch, three devices from 127.0.0.10-12: one connection per
// reading carrying exactly "N\r\n", in order.
func TestSendTutorialDevices(t *testing.T) {
	sink := startSendTestSink(t)
	out, _, code := sendTestRun(t, context.Background(),
		"--addr", sink.addr(), "--devices", "3", "--count", "5", "--every", "0", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	rep := sendTestReport(t, out)
	if rep.Sent != 15 || rep.Errors != 0 || !rep.OK || len(rep.Devices) != 3 || rep.Acked != nil {
		t.Errorf("summary %+v", rep)
	}
	conns := sink.wait(t, 15)
	if len(conns) != 15 {
		t.Fatalf("%d connections, want 15", len(conns))
	}
	byDevice := map[string][]string{}
	for _, c := range conns {
		byDevice[c.from] = append(byDevice[c.from], string(c.data))
	}
	for d := range 3 {
		src := fmt.Sprintf("127.0.0.%d", 10+d)
		want := []string{"1\r\n", "2\r\n", "3\r\n", "4\r\n", "5\r\n"}
		if got := byDevice[src]; !slices.Equal(got, want) {
			t.Errorf("device %s sent %q, want %q", src, got, want)
		}
	}
}

// sendTestBuffer is a bytes.Buffer safe to read while a run writes to it.
type sendTestBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *sendTestBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *sendTestBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A tutorial device whose connect fails waits and retries the same value: the
// server, once up, gets 1 and 2, nothing skipped.
func TestSendTutorialRetriesSameValue(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the server is down

	var stdout, stderr sendTestBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"send", "--addr", addr, "--count", "2", "--every", "0", "--json"}, &stdout, &stderr)
	}()
	waitFor(t, "a failed connect", 10*time.Second, func() bool { return strings.Contains(stderr.String(), "connect") })

	ln, err = net.Listen("tcp", addr) // the server comes up
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 2 {
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		got = append(got, string(b))
	}
	ln.Close()
	if code := <-done; code != 0 {
		t.Errorf("exit %d; stderr %s", code, stderr.String())
	}
	if want := []string{"1\r\n", "2\r\n"}; !slices.Equal(got, want) {
		t.Errorf("received %q, want %q", got, want)
	}
	if rep := sendTestReport(t, stdout.String()); rep.Sent != 2 || rep.Retried < 1 || !rep.OK {
		t.Errorf("summary %+v", rep)
	}
}

// Plain UDP: exactly the sketch's 10-byte datagrams, NUL-padded.
func TestSendUDP(t *testing.T) {
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	out, _, code := sendTestRun(t, context.Background(),
		"--mode", "udp", "--addr", uc.LocalAddr().String(), "--count", "3", "--every", "0", "--devices", "2", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if rep := sendTestReport(t, out); rep.Sent != 6 || !rep.OK {
		t.Errorf("summary %+v", rep)
	}
	got := map[string][]string{}
	buf := make([]byte, 2048)
	for range 6 {
		uc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, from, err := uc.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("read: %v (got %q so far)", err, got)
		}
		got[from.Addr().String()] = append(got[from.Addr().String()], string(buf[:n]))
	}
	for _, src := range []string{"127.0.0.10", "127.0.0.11"} {
		want := []string{"1\x00\x00\x00\x00\x00\x00\x00\x00\x00", "2\x00\x00\x00\x00\x00\x00\x00\x00\x00", "3\x00\x00\x00\x00\x00\x00\x00\x00\x00"}
		if !slices.Equal(got[src], want) {
			t.Errorf("from %s: %q, want %q", src, got[src], want)
		}
	}
}

// Plain stream: one connection carrying every line.
func TestSendStream(t *testing.T) {
	sink := startSendTestSink(t)
	_, _, code := sendTestRun(t, context.Background(), "--mode", "stream", "--addr", sink.addr(), "--count", "4", "--every", "0")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	conns := sink.wait(t, 1)
	if len(conns) != 1 || string(conns[0].data) != "1\r\n2\r\n3\r\n4\r\n" || conns[0].from != "127.0.0.1" {
		for _, c := range conns {
			t.Logf("connection %d from %s: %q", c.n, c.from, c.data)
		}
		t.Fatalf("want one connection from 127.0.0.1 with 1..4")
	}
}

// Templates fill in the counter and random values.
func TestSendTemplate(t *testing.T) {
	sink := startSendTestSink(t)
	_, _, code := sendTestRun(t, context.Background(), "--addr", sink.addr(), "--count", "3", "--every", "0",
		"--template", "temp={rand},n={n},k={randint};{x}")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	conns := sink.wait(t, 3)
	re := regexp.MustCompile(`^temp=(\d{1,3}\.\d\d),n=(\d+),k=(\d{1,4});\{x\}\r\n$`)
	for i, c := range conns {
		m := re.FindStringSubmatch(string(c.data))
		if m == nil {
			t.Errorf("connection %d: %q does not match %s", i, c.data, re)
			continue
		}
		f, _ := strconv.ParseFloat(m[1], 64)
		k, _ := strconv.Atoi(m[3])
		if f < 0 || f > 100 || k < 0 || k > 1000 || m[2] != strconv.Itoa(i+1) {
			t.Errorf("connection %d: %q out of range", i, c.data)
		}
	}
}

// Interrupted while the server is down: the reading being retried was not sent,
// so the exit status says so, and the summary is printed.
func TestSendInterrupted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	out, stderr, code := sendTestRun(t, ctx, "--addr", addr, "--every", "0", "--json")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	rep := sendTestReport(t, out)
	if rep.OK || rep.Sent != 0 || rep.Retried < 1 {
		t.Errorf("summary %+v", rep)
	}
	if !strings.Contains(stderr, "connect") {
		t.Errorf("stderr %q does not say why", stderr)
	}
}

// --ack with --stdin: every line stored once, under the device id given.
func TestSendAckStdin(t *testing.T) {
	srv, err := fakeinlet.Start(fakeinlet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sendStdin = strings.NewReader("21.5\r\nhum=40\n\ntemp=3 x\nlast line without newline")
	t.Cleanup(func() { sendStdin = os.Stdin })
	out, _, code := sendTestRun(t, context.Background(), "--ack", "--stdin", "--addr", srv.TCPAddr(), "--mode", "stream",
		"--device", "pi", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	rep := sendTestReport(t, out)
	if rep.Acked == nil || *rep.Acked != 4 || *rep.Pending != 0 || !rep.OK {
		t.Errorf("summary %+v", rep)
	}
	var got []string
	for _, m := range srv.Stored() {
		if m.Device != "pi" || int(m.Seq) != len(got)+1 {
			t.Errorf("stored %+v", m)
		}
		got = append(got, string(m.Payload))
	}
	if want := []string{"21.5", "hum=40", "temp=3 x", "last line without newline"}; !slices.Equal(got, want) {
		t.Errorf("stored %q, want %q", got, want)
	}
	if srv.Conns() != 1 {
		t.Errorf("%d connections, want 1 (stream)", srv.Conns())
	}
}

// --ack tutorial: one connection (with its hello) per reading, per device, from
// each device's own address, with a durable outbox per device.
func TestSendAckTutorialDevices(t *testing.T) {
	srv, err := fakeinlet.Start(fakeinlet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	out, _, code := sendTestRun(t, context.Background(), "--ack", "--addr", srv.TCPAddr(), "--devices", "2",
		"--count", "5", "--every", "0", "--device", "esp", "--outbox", dir, "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if rep := sendTestReport(t, out); rep.Acked == nil || *rep.Acked != 10 || !rep.OK {
		t.Errorf("summary %+v", rep)
	}
	got := map[string][]string{}
	for _, m := range srv.Received() {
		got[m.Device] = append(got[m.Device], string(m.Payload))
		if want := map[string]string{"esp-1": "127.0.0.10", "esp-2": "127.0.0.11"}[m.Device]; m.Remote.Addr().String() != want {
			t.Errorf("%s sent from %s, want %s", m.Device, m.Remote.Addr(), want)
		}
	}
	for _, d := range []string{"esp-1", "esp-2"} {
		if want := []string{"1", "2", "3", "4", "5"}; !slices.Equal(got[d], want) {
			t.Errorf("%s: received %q, want %q", d, got[d], want)
		}
		if _, err := os.Stat(filepath.Join(dir, d, "outbox.log")); err != nil {
			t.Errorf("outbox of %s: %v", d, err)
		}
	}
	if srv.Conns() != 10 {
		t.Errorf("%d connections, want 10", srv.Conns())
	}
}

// --ack --mode udp: acknowledged datagrams.
func TestSendAckUDP(t *testing.T) {
	srv, err := fakeinlet.Start(fakeinlet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	out, _, code := sendTestRun(t, context.Background(), "--ack", "--mode", "udp", "--addr", srv.UDPAddr(),
		"--count", "5", "--every", "0", "--device", "sleepy", "--template", "v={n}", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if rep := sendTestReport(t, out); rep.Acked == nil || *rep.Acked != 5 || !rep.OK {
		t.Errorf("summary %+v", rep)
	}
	var got []string
	for _, m := range srv.Stored() {
		if m.Network != "udp" || m.Device != "sleepy" {
			t.Errorf("stored %+v", m)
		}
		got = append(got, string(m.Payload))
	}
	slices.Sort(got)
	if want := []string{"v=1", "v=2", "v=3", "v=4", "v=5"}; !slices.Equal(got, want) {
		t.Errorf("stored %q, want %q", got, want)
	}
}

// A reading the server rejects makes the run fail, and says so.
func TestSendAckRejected(t *testing.T) {
	srv, err := fakeinlet.Start(fakeinlet.Options{
		OnMessage: func(m fakeinlet.Msg) (fakeinlet.Action, string) {
			if string(m.Payload) == "2" {
				return fakeinlet.Reject, "bad-seq"
			}
			return fakeinlet.Store, ""
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	out, _, code := sendTestRun(t, context.Background(), "--ack", "--mode", "stream", "--addr", srv.TCPAddr(),
		"--count", "3", "--every", "0", "--device", "d", "--json")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if rep := sendTestReport(t, out); rep.Errors != 1 || *rep.Acked != 2 || rep.OK {
		t.Errorf("summary %+v", rep)
	}
}

// Connections the server refused and that were tried again count as retries
// (inlet send --ack once said "retried 0" after retrying).
func TestSendAckCountsRetries(t *testing.T) {
	for _, mode := range []string{"stream", "tutorial"} {
		t.Run(mode, func(t *testing.T) {
			srv, err := fakeinlet.Start(fakeinlet.Options{
				Hello: func(n int, _, _ string) string {
					if n <= 2 {
						return "busy"
					}
					return ""
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			out, _, code := sendTestRun(t, context.Background(), "--ack", "--mode", mode, "--addr", srv.TCPAddr(),
				"--count", "3", "--every", "0", "--device", "d", "--json")
			if code != 0 {
				t.Errorf("exit %d, want 0", code)
			}
			rep := sendTestReport(t, out)
			if rep.Retried != 2 || *rep.Acked != 3 || len(srv.Stored()) != 3 {
				t.Errorf("summary %+v after %d hellos, %d stored; want retried 2", rep, srv.Hellos(), len(srv.Stored()))
			}
		})
	}
}

func TestSendFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--mode", "carrier-pigeon"},
		{"--outbox", "x"},
		{"--device", "x"},
		{"--stdin", "--devices", "2"},
		{"--every", "-1s"},
		{"--ack", "--device", "bad name"},
		{"--addr", "nocolon"},
		{"stray"},
	} {
		_, stderr, code := sendTestRun(t, context.Background(), args...)
		if code == 0 || stderr == "" {
			t.Errorf("send %q: exit %d, stderr %q; want an error", args, code, stderr)
		}
	}
	if _, _, code := sendTestRun(t, context.Background(), "-h"); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
}
