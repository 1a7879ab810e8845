package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

// The first hour of a new user: the database file guarded under the server,
// start-up errors that say what to do, and where to point a device.

// runInlet runs the binary to completion (bounded) and returns its exit status,
// stdout and stderr.
func runInlet(t *testing.T, setup func(*exec.Cmd), args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, inletBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if setup != nil {
		setup(cmd)
	}
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("inlet %v still running after 20s (killed): want it to exit\n%s", args, stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("inlet %v: %v\n%s", args, err, stderr.String())
	return 0, "", ""
}

// ackStream is an INLET/1 client pipelining seq 1, 2, … with at most window
// messages unacknowledged, recording the highest seq sent and acknowledged.
type ackStream struct {
	c      net.Conn
	sent   atomic.Int64
	acked  atomic.Int64
	done   chan struct{}
	window int64
}

func startAckStream(t *testing.T, addr string, window int64) *ackStream {
	t.Helper()
	c := dialFrom(t, "", addr)
	s := &ackStream{c: c, done: make(chan struct{}), window: window}
	t.Cleanup(func() { c.Close(); <-s.done })
	if _, err := fmt.Fprintf(c, "INLET/1 id=guarded boot=b1\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "INLET/1 OK") {
		t.Fatalf("hello: %q %v", l, err)
	}
	c.SetReadDeadline(time.Time{})
	go func() {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if n, ok := strings.CutPrefix(strings.TrimSpace(l), "ACK "); ok {
				v, _ := strconv.ParseInt(n, 10, 64)
				if v > s.acked.Load() {
					s.acked.Store(v)
				}
			}
		}
	}()
	go func() {
		defer close(s.done)
		w := bufio.NewWriter(c)
		for seq := int64(1); ; seq++ {
			for seq-s.acked.Load() > s.window {
				w.Flush()
				time.Sleep(time.Millisecond)
				if _, err := c.Write(nil); err != nil {
					return
				}
			}
			// sent is raised before the line can reach the server.
			s.sent.Store(seq)
			if _, err := fmt.Fprintf(w, "%d reading-%d\n", seq, seq); err != nil {
				return
			}
			if w.Buffered() > 512 || seq%8 == 0 {
				if w.Flush() != nil {
					return
				}
			}
		}
	}()
	return s
}

func readyz(t *testing.T, httpAddr string) int { return httpStatus("http://" + httpAddr + "/readyz") }

// Deleted under the server mid-stream (rm inlet.db*), the database is never
// acknowledged into: no ACK covers a message sent after the deletion, /readyz
// turns unready, one log line says what happened and what to do, and a
// restart exits 1 naming what it could not store, its error printed once.
func TestDeletedDatabaseNotAcknowledged(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db)
	s := startAckStream(t, srv.ready.TCP, 64)
	waitFor(t, "500 acknowledged", 20*time.Second, func() bool { return s.acked.Load() >= 500 })
	files, _ := filepath.Glob(db + "*")
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	sentAtDeletion := s.sent.Load()
	time.Sleep(1500 * time.Millisecond) // the stream goes on trying
	if a := s.acked.Load(); a > sentAtDeletion {
		t.Fatalf("ACK %d after the database was deleted; the last message sent before was %d", a, sentAtDeletion)
	}
	waitFor(t, "/readyz unready", 10*time.Second, func() bool { return readyz(t, srv.ready.HTTP) == 503 })
	logs := srv.stderr.String()
	if n := strings.Count(logs, "database file deleted or moved away while open"); n != 1 {
		t.Errorf("%d log lines about the deleted database, want exactly 1:\n%s", n, logs)
	}
	if !strings.Contains(logs, "restart inlet serve") {
		t.Errorf("the log does not say what to do:\n%s", logs)
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("the server created a new database at the path")
	}

	// An operator restarts it: it cannot store what it holds, says so once, exits 1.
	srv.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-srv.exited:
		srv.exited <- err
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30s after SIGTERM")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit %v after SIGTERM with messages it could not store, want status 1", err)
	}
	logs = srv.stderr.String()
	if strings.Count(logs, "context deadline exceeded") > 1 || strings.Contains(logs, "\ninlet: ") {
		t.Errorf("the shutdown error is printed more than once:\n%s", logs)
	}
	if !strings.Contains(logs, "not stored") {
		t.Errorf("the shutdown does not say what was not stored:\n%s", logs)
	}
}

// A database replaced under the server (mv other.db inlet.db) is not written:
// no ACK covers a message sent after the replacement, the server turns
// unready and logs it, and the new file reads as itself, not as malformed.
func TestReplacedDatabaseRefused(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db)
	s := startAckStream(t, srv.ready.TCP, 64)
	waitFor(t, "300 acknowledged", 20*time.Second, func() bool { return s.acked.Load() >= 300 })

	other := filepath.Join(dir, "other.db")
	o, err := sqlite.Open(context.Background(), other, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := &inlet.Batch{}
	for i := range 7 {
		b.Messages = append(b.Messages, inlet.Message{ReceivedAt: time.Now().UnixNano(), Device: "other", Transport: inlet.TCP,
			Remote: netip.MustParseAddrPort("127.0.0.1:1"), Payload: []byte(strconv.Itoa(i))})
	}
	if err := o.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	o.Close()
	if err := os.Rename(other, db); err != nil {
		t.Fatal(err)
	}
	sentAtReplace := s.sent.Load()
	time.Sleep(1500 * time.Millisecond)
	if a := s.acked.Load(); a > sentAtReplace {
		t.Fatalf("ACK %d after the database was replaced; the last message sent before was %d", a, sentAtReplace)
	}
	waitFor(t, "/readyz unready", 10*time.Second, func() bool { return readyz(t, srv.ready.HTTP) == 503 })
	if logs := srv.stderr.String(); strings.Count(logs, "database file replaced by another file while open") != 1 {
		t.Errorf("want one log line about the replaced database:\n%s", logs)
	}
	ms := messages(t, db, inlet.Query{})
	if len(ms) != 7 || ms[0].Device != "other" {
		t.Errorf("the replacement reads %d rows, want its own 7", len(ms))
	}
}

// Another process holding the write lock (sqlite3's BEGIN IMMEDIATE) while a
// device sends turns /readyz unready within a second or two, not after the
// 10 s busy timeout; released, the message commits and the server is ready.
func TestHeldWriteLockTurnsUnready(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db)
	other, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	if err := sendOnce("127.0.0.71", srv.ready.TCP, "41\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for readyz(t, srv.ready.HTTP) == 200 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("/readyz still 200 5s into a commit blocked by another process's write lock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("unready %s after the message", time.Since(start).Round(10*time.Millisecond))
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message stored", 20*time.Second, func() bool { return len(messages(t, db, inlet.Query{})) == 1 })
	waitFor(t, "/readyz ready again", 20*time.Second, func() bool { return readyz(t, srv.ready.HTTP) == 200 })
}

// A second inlet serve on one database is refused, naming the first one's pid;
// readers go on working beside the server.
func TestSecondServerRefused(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db)
	if err := sendOnce("127.0.0.72", srv.ready.TCP, "1\n"); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runInlet(t, nil, "serve", "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db)
	if code != 1 || stdout != "" {
		t.Fatalf("second server: exit %d, stdout %q, want 1 and no ready line\n%s", code, stdout, stderr)
	}
	pid := strconv.Itoa(srv.cmd.Process.Pid)
	if !strings.Contains(stderr, "process "+pid) || !strings.Contains(stderr, "one inlet serve per database") {
		t.Errorf("second server's error does not name process %s and the rule:\n%s", pid, stderr)
	}
	waitFor(t, "the message stored", 10*time.Second, func() bool { return len(messages(t, db, inlet.Query{})) == 1 })
	if code, out, errOut := runInlet(t, nil, "export", "--db", db); code != 0 || !strings.Contains(out, `"payload":"1"`) {
		t.Errorf("export beside the server: exit %d, %q %s", code, out, errOut)
	}
	srv.stop(t, syscall.SIGTERM)
	// The first gone, a new one starts.
	startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db)
}

// Start-up errors say what happened and what to do, once, and leave nothing behind.
func TestStartErrorsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runInlet(t, nil, "serve", "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", filepath.Join(dir, "missing", "x.db"))
	if code != 1 || stdout != "" || !strings.Contains(stderr, "does not exist") || !strings.Contains(stderr, "mkdir -p") {
		t.Errorf("missing directory: exit %d, stderr:\n%s", code, stderr)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	db := filepath.Join(dir, "x.db")
	code, _, stderr = runInlet(t, nil, "serve", "--tcp", ln.Addr().String(), "--udp", "", "--http", "", "--db", db)
	if code != 1 {
		t.Errorf("port in use: exit %d", code)
	}
	if !strings.Contains(stderr, "address already in use") || !strings.Contains(stderr, fmt.Sprintf("--tcp 127.0.0.1:%d", port+2)) {
		t.Errorf("port in use: the error does not say how to pick another port:\n%s", stderr)
	}
	if strings.Count(stderr, "listen tcp") > 0 || strings.Contains(stderr, "stopped") {
		t.Errorf("port in use: a doubled prefix or a misleading 'stopped' line:\n%s", stderr)
	}
	if left, _ := filepath.Glob(db + "*"); len(left) > 0 {
		t.Errorf("port in use: the failed start left %v behind", left)
	}
}

// Usage errors exit 2 (docs/cli.md), a mistyped command gets a suggestion, and
// inlet help <command> prints that command's usage.
func TestExitCodesAndDidYouMean(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"serve", "--max-message", "0"}, 2, "", "--max-message 0"},
		{[]string{"serve", "--log-format", "xml"}, 2, "", "Run 'inlet serve -h'"},
		{[]string{"serve", "--nope"}, 2, "", "flag provided but not defined"},
		{[]string{"export", "--limit", "-1", "--db", "x.db"}, 2, "", "--limit -1"},
		{[]string{"export", "--since", "yesterday-ish"}, 2, "", "--since"},
		{[]string{"tail", "--format", "xml"}, 2, "", "--format"},
		{[]string{"serv"}, 2, "", "did you mean serve?"},
		{[]string{"exprot"}, 2, "", "did you mean export?"},
		{[]string{"devcies"}, 2, "", "did you mean devices?"},
		{[]string{"help", "serve"}, 0, "Usage: inlet serve", ""},
		{[]string{"help", "tail"}, 0, "Usage: inlet tail", ""},
		{[]string{"help", "serv"}, 2, "", "did you mean serve?"},
		{[]string{"help"}, 0, "Usage:", ""},
	} {
		code, stdout, stderr := runInlet(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("inlet %v: exit %d, stdout %.80q, stderr %.200q; want exit %d with %q / %q",
				tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
}

// inlet tail without a server says how to start one or read the file instead;
// a server that stops cleanly is reported as closing the stream, not as an
// "unexpected EOF".
func TestTailHints(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ln.Addr().String()
	ln.Close()
	t0 := time.Now()
	code, _, stderr := runInlet(t, nil, "tail", "--server", "http://"+free)
	t.Logf("tail without server took %s", time.Since(t0))
	if code != 1 || !strings.Contains(stderr, "inlet serve") || !strings.Contains(stderr, "--db") {
		t.Errorf("tail without a server: exit %d:\n%s", code, stderr)
	}

	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db)
	tail := startTail(t, "--server", "http://"+srv.ready.HTTP, "-n", "0")
	// -n 0 prints what is committed once it follows: send until it prints.
	deadline := time.Now().Add(20 * time.Second)
	for printed := false; !printed; {
		if time.Now().After(deadline) {
			t.Fatalf("tail printed nothing:\n%s", tail.stderr.String())
		}
		if err := sendOnce("127.0.0.73", srv.ready.TCP, "5\n"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-tail.lines:
			printed = true
		case <-time.After(200 * time.Millisecond):
		}
	}
	t0 = time.Now()
	srv.stop(t, syscall.SIGTERM)
	t.Logf("stopped in %s", time.Since(t0))
	waitFor(t, "tail to notice", 10*time.Second, func() bool { return strings.Contains(tail.stderr.String(), "closed the stream") })
	time.Sleep(2500 * time.Millisecond) // a few reconnection attempts
	if e := tail.stderr.String(); strings.Contains(e, "EOF") || strings.Count(e, "\n") != 1 {
		t.Errorf("tail after a clean server stop, want one quiet line:\n%s", e)
	}
}

// The stop line says a resend was de-duplicated, so received and committed
// differing is explained.
func TestStoppedLineCountsDuplicates(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db)
	a, ok := dialAck(t, srv.ready.TCP, "INLET/1 id=dup boot=b1\n")
	if ok != "INLET/1 OK last=0" {
		t.Fatal(ok)
	}
	a.send("1 a\n", "2 b\n")
	a.ackedUpTo(2)
	a.send("2 b\n")
	a.ackedUpTo(2)
	srv.stop(t, syscall.SIGTERM)
	if !strings.Contains(srv.stderr.String(), "msg=stopped received=3 committed=2 duplicates=1") {
		t.Errorf("stop line:\n%s", srv.stderr.String())
	}
}

// The start-up says where the dashboard is, on stderr for a human and in the
// ready line; bound to loopback only, it says devices on the network cannot
// reach it.
func TestReadyOutputForAHuman(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", db)
	want := "http://" + srv.ready.HTTP + "/"
	if srv.ready.Dashboard != want {
		t.Errorf("ready line dashboard %q, want %q", srv.ready.Dashboard, want)
	}
	waitFor(t, "the human lines", 5*time.Second, func() bool {
		return strings.Contains(srv.stderr.String(), "dashboard at "+want)
	})
	if !strings.Contains(srv.stderr.String(), "loopback only") {
		t.Errorf("no word that devices cannot reach a loopback-only server:\n%s", srv.stderr.String())
	}
}

// One line per address of this machine: where to point a device.
func TestReachLines(t *testing.T) {
	for _, tc := range []struct {
		host, tcp, udp, want string
	}{
		{"192.168.4.2", "[::]:3000", "[::]:3001", "devices can reach me at 192.168.4.2:3000 (tcp), :3001 (udp)"},
		{"192.168.4.2", "0.0.0.0:3000", "", "devices can reach me at 192.168.4.2:3000 (tcp)"},
		{"192.168.4.2", "", "0.0.0.0:3001", "devices can reach me at 192.168.4.2:3001 (udp)"},
		{"192.168.4.2", "127.0.0.1:3000", "127.0.0.1:3001", ""},
		{"192.168.4.2", "192.168.4.2:3000", "10.0.0.5:3001", "devices can reach me at 192.168.4.2:3000 (tcp)"},
		{"2001:db8::7", "[::]:3000", "0.0.0.0:3001", "devices can reach me at [2001:db8::7]:3000 (tcp)"},
		{"2001:db8::7", "0.0.0.0:3000", "0.0.0.0:3001", ""},
	} {
		got := reachLine(netip.MustParseAddr(tc.host), deviceListeners(ReadyInfo{TCP: tc.tcp, UDP: tc.udp}))
		if got != tc.want {
			t.Errorf("%s with tcp %q udp %q: %q, want %q", tc.host, tc.tcp, tc.udp, got, tc.want)
		}
	}
	var buf bytes.Buffer
	var mu sync.Mutex
	m := &Main{Logger: slog.New(slog.NewTextHandler(lockedWriter{&buf, &mu}, nil)),
		hosts: []hostAddr{{netip.MustParseAddr("192.168.4.2"), "wlan0"}, {netip.MustParseAddr("10.1.2.3"), "eth0"}}}
	m.logReach(ReadyInfo{TCP: "[::]:3000", UDP: "[::]:3001", Dashboard: "http://127.0.0.1:8080/"})
	out := buf.String()
	for _, want := range []string{
		`msg="devices can reach me at 192.168.4.2:3000 (tcp), :3001 (udp)" interface=wlan0`,
		`msg="devices can reach me at 10.1.2.3:3000 (tcp), :3001 (udp)" interface=eth0`,
		`msg="dashboard at http://127.0.0.1:8080/"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("start-up lines lack %s:\n%s", want, out)
		}
	}
	if got := dashboardURL("[::]:8080"); got != "http://127.0.0.1:8080/" {
		t.Errorf("dashboard URL for [::]:8080: %q", got)
	}
	ri, _ := json.Marshal(ReadyInfo{Event: "ready", Hosts: []string{"192.168.4.2"}})
	if !strings.Contains(string(ri), `"hosts":["192.168.4.2"]`) {
		t.Errorf("ready line %s", ri)
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
