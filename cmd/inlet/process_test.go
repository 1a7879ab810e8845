package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/internal/inlettest"
)

// inletBinary is the real binary, built once per test run.
func inletBinary(t testing.TB) string { return inlettest.Binary(t) }

// server is the real binary, started by a test.
type server struct {
	cmd    *exec.Cmd
	ready  ReadyInfo
	stderr *inlettest.Buffer
	exited chan error
}

// startBinary runs `inlet serve` with args and waits for its ready line.
func startBinary(t testing.TB, args ...string) *server {
	t.Helper()
	cmd := exec.Command(inletBinary(t), append([]string{"serve"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stderr: new(inlettest.Buffer), exited: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			t.Logf("server stderr:\n%s", s.stderr.String())
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("server exited before ready:\n%s", s.stderr.String())
		}
		if err := json.Unmarshal([]byte(line), &s.ready); err != nil || s.ready.Event != "ready" {
			t.Fatalf("ready line %q: %v", line, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no ready line after 20s:\n%s", s.stderr.String())
	}
	return s
}

// stop sends sig and waits for the exit, which must be prompt and clean.
func (s *server) stop(t testing.TB, sig os.Signal) {
	t.Helper()
	start := time.Now()
	s.cmd.Process.Signal(sig)
	select {
	case err := <-s.exited:
		s.exited <- err
		if err != nil {
			t.Fatalf("exit after %v: %v\n%s", sig, err, s.stderr.String())
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s to stop", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15s after %v", sig)
	}
}

var stoppedLine = regexp.MustCompile(`msg=stopped received=(\d+) committed=(\d+)`)

// SIGTERM under load: every message the server read is stored, each device's
// counters are an unbroken prefix, and a restart continues the device counters.
func TestShutdownUnderLoadAndRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	args := []string{"--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db}
	srv := startBinary(t, args...)

	const devs = 8
	var wg sync.WaitGroup
	written := make([]int, devs)
	for d := range devs {
		wg.Go(func() {
			c := dialFrom(t, fmt.Sprintf("127.0.0.%d", 20+d), srv.ready.TCP)
			defer c.Close()
			w := bufio.NewWriterSize(c, 4096)
			for n := 1; n <= 2_000_000; n++ {
				fmt.Fprintf(w, "%d\r\n", n)
				if w.Buffered() > 4000 {
					if err := w.Flush(); err != nil {
						return // the server closed: shutdown
					}
				}
				written[d] = n
			}
			w.Flush()
		})
	}
	time.Sleep(700 * time.Millisecond)
	srv.stop(t, syscall.SIGTERM)
	wg.Wait()

	match := stoppedLine.FindStringSubmatch(srv.stderr.String())
	if match == nil {
		t.Fatalf("no 'stopped' log line:\n%s", srv.stderr.String())
	}
	received, _ := strconv.ParseInt(match[1], 10, 64)
	committed, _ := strconv.ParseInt(match[2], 10, 64)
	if received != committed || committed == 0 {
		t.Fatalf("received %d, committed %d: want equal and non-zero", received, committed)
	}
	ds := devices(t, db)
	var total int64
	last := make(map[string]int64)
	for d := range devs {
		id := fmt.Sprintf("127.0.0.%d", 20+d)
		dev := ds[id]
		total += dev.Messages
		high, _ := dev.LastCounter()
		if dev.Messages == 0 || dev.Gaps != 0 || dev.Missing != 0 || dev.Duplicates != 0 || high != dev.Messages {
			t.Errorf("device %s: %+v: want counters 1..messages without loss", id, dev)
		}
		last[id] = high
	}
	if total != committed {
		t.Errorf("devices count %d messages, server committed %d", total, committed)
	}
	t.Logf("stored %d messages from %d streams before SIGTERM", committed, devs)

	// Restart on the same database; each device continues its counter.
	srv = startBinary(t, args...)
	for id, high := range last {
		for n := high + 1; n <= high+5; n++ {
			if err := sendOnce(id, srv.ready.TCP, fmt.Sprintf("%d\r\n", n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	srv.stop(t, syscall.SIGINT)
	ds = devices(t, db)
	for id, high := range last {
		dev := ds[id]
		if got, _ := dev.LastCounter(); got != high+5 || dev.Messages != high+5 || dev.Gaps != 0 || dev.Resets != 0 {
			t.Errorf("after restart device %s: %+v, want %d messages, no gaps", id, dev, high+5)
		}
	}
	if rows := len(messages(t, db, inlet.Query{})); int64(rows) != total+5*devs {
		t.Errorf("rows %d, want %d", rows, total+5*devs)
	}
}

// SIGTERM while streams keep the commit queue full and 1,000 connect-per-message
// devices have just connected and written their line: every line of every one of
// those connections (accepted, or still waiting in the listen backlog) is stored,
// and the log's received equals committed. The accept loop must never wait for
// queue space, or the backlog outlives the shutdown's drain unread.
func TestShutdownStoresTheBacklog(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db)

	const streams = 8
	var wg sync.WaitGroup
	var streamed atomic.Int64
	for d := range streams {
		wg.Go(func() {
			c := dialFrom(t, fmt.Sprintf("127.0.0.%d", 20+d), srv.ready.TCP)
			defer c.Close()
			w := bufio.NewWriterSize(c, 64<<10)
			for n := 1; ; n++ {
				fmt.Fprintf(w, "%d\n", n)
				if w.Buffered() > 60<<10 {
					if err := w.Flush(); err != nil {
						return // the server closed: shutdown
					}
					streamed.Add(1)
				}
			}
		})
	}
	// The streams run until the server has taken a few MB from each: the
	// queue is full, and stays full, from then on.
	deadline := time.Now().Add(20 * time.Second)
	for streamed.Load() < 50*streams && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	const devs = 1000
	sent := make([]bool, devs)
	var senders sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range devs {
		senders.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			sent[i] = sendOnce(fmt.Sprintf("127.2.%d.%d", i/250, i%250+1), srv.ready.TCP, fmt.Sprintf("cpm-%d\n", i)) == nil
		})
	}
	senders.Wait()
	srv.stop(t, syscall.SIGTERM)
	wg.Wait()

	match := stoppedLine.FindStringSubmatch(srv.stderr.String())
	if match == nil {
		t.Fatalf("no 'stopped' log line:\n%s", srv.stderr.String())
	}
	if match[1] != match[2] {
		t.Errorf("received %s, committed %s: want equal", match[1], match[2])
	}
	ds := devices(t, db)
	var lost, tried int
	for i := range devs {
		if !sent[i] {
			continue
		}
		tried++
		if ds[fmt.Sprintf("127.2.%d.%d", i/250, i%250+1)].Messages != 1 {
			lost++
		}
	}
	t.Logf("%d of %d connect-per-message devices sent; %d streams", tried, devs, streams)
	if tried < devs/2 {
		t.Fatalf("only %d of %d devices could connect", tried, devs)
	}
	if lost > 0 {
		t.Errorf("%d of %d devices that connected and wrote before SIGTERM have no stored line", lost, tried)
	}
}

// The binary refuses bad flags with a clear message and exit status 2.
func TestServeFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-message", "0"}, "--max-message"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--tcp", "", "--udp", ""}, "nothing to listen on"},
		{[]string{"stray"}, "unexpected argument"},
	} {
		cmd := exec.Command(inletBinary(t), append([]string{"serve"}, tc.args...)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("%v: exit %v, want failure", tc.args, err)
		}
		if !bytes.Contains(out, []byte(tc.want)) {
			t.Errorf("%v: output %q does not mention %q", tc.args, out, tc.want)
		}
	}
	// A port already in use is a clear error too.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(inletBinary(t), "serve", "--tcp", ln.Addr().String(), "--udp", "", "--http", "",
		"--db", filepath.Join(t.TempDir(), "x.db"))
	out, _ := cmd.CombinedOutput()
	if !bytes.Contains(out, []byte("address already in use")) {
		t.Errorf("port in use: %q", out)
	}
}
