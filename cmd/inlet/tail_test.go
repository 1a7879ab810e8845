package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/internal/inlettest"
	"github.com/inletdev/inlet/record"
)

// tailProc is `inlet tail` running as a subprocess, its stdout read line by line.
type tailProc struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *inlettest.Buffer
	exited chan error
}

func startTail(t *testing.T, args ...string) *tailProc {
	t.Helper()
	cmd := exec.Command(inletBinary(t), append([]string{"tail"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &tailProc{cmd: cmd, lines: make(chan string, 100), stderr: new(inlettest.Buffer), exited: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("tail stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

func (p *tailProc) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("tail exited early:\n%s", p.stderr.String())
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("no line from tail within 10s:\n%s", p.stderr.String())
	}
	return ""
}

// inlet tail prints the newest -n, then follows the live stream; when the server
// restarts it reconnects and resumes, printing every message once, in order.
func TestTailFollowsAndResumes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", db)
	for _, v := range []string{"1", "2", "3"} {
		if err := sendOnce("127.0.0.61", srv.ready.TCP, v+"\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "3 stored", 5*time.Second, func() bool { return len(messages(t, db, inlet.Query{})) == 3 })

	tail := startTail(t, "--server", "http://"+srv.ready.HTTP, "-n", "2", "--format", "json", "--count", "7")
	var got []record.Message
	read := func() {
		var r record.Message
		if err := json.Unmarshal([]byte(tail.next(t)), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	read()
	read()
	for _, v := range []string{"4", "5"} {
		if err := sendOnce("127.0.0.62", srv.ready.TCP, v+"\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	read()
	read()

	// Restart the server on the same addresses: tail reconnects and resumes.
	srv.stop(t, syscall.SIGTERM)
	srv2 := startBinary(t, "--tcp", srv.ready.TCP, "--udp", srv.ready.UDP, "--http", srv.ready.HTTP, "--db", db)
	if err := sendOnce("127.0.0.61", srv2.ready.TCP, "6\r\n"); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", srv2.ready.UDP)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("7\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	c.Close()
	if err := sendOnce("127.0.0.62", srv2.ready.TCP, "8\r\n"); err != nil {
		t.Fatal(err)
	}
	read()
	read()
	read()
	select {
	case err := <-tail.exited:
		if err != nil {
			t.Fatalf("tail --count 7 exit: %v\n%s", err, tail.stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tail did not exit after --count messages")
	}

	want := messages(t, db, inlet.Query{})[1:] // the newest 2 of the first 3, then all
	if len(got) != len(want) {
		t.Fatalf("tail printed %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Payload == nil || *got[i].Payload != string(want[i].Payload) {
			t.Errorf("message %d: tail printed id %d %v, store has id %d %q", i, got[i].ID, got[i].Payload, want[i].ID, want[i].Payload)
		}
	}
	if !strings.Contains(tail.stderr.String(), "reconnecting") {
		t.Errorf("tail did not report the lost stream on stderr:\n%s", tail.stderr.String())
	}
}

// The text format: time, device, transport and payload on one line, control
// characters escaped so a payload cannot drive the terminal.
func TestTailTextAndDB(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db)
	tail := startTail(t, "--server", "http://"+srv.ready.HTTP, "-n", "0", "--color", "always", "--device", "127.0.0.71", "--count", "2")
	// -n 0 shows only what is committed after it subscribes: wait until it has.
	waitFor(t, "tail subscribed", 10*time.Second, func() bool {
		resp, err := http.Get("http://" + srv.ready.HTTP + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "\ninlet_stream_subscribers 1\n")
	})
	sendOnce("127.0.0.72", srv.ready.TCP, "other device\r\n")
	sendOnce("127.0.0.71", srv.ready.TCP, "temp=21.5\r\n")
	l1 := tail.next(t)
	// Separate connections carry no order between them: send the next one after.
	sendOnce("127.0.0.71", srv.ready.TCP, "evil\x1b[2Jclear\r\n")
	l2 := tail.next(t)
	if !strings.Contains(l1, "127.0.0.71") || !strings.Contains(l1, "\x1b[") || !strings.HasSuffix(l1, "  tcp  temp=21.5") {
		t.Errorf("line 1 = %q: want a coloured device and the payload", l1)
	}
	if strings.Contains(l2, "\x1b[2J") || !strings.Contains(l2, `evil\x1b[2Jclear`) {
		t.Errorf("line 2 = %q: want the escape sequence shown escaped", l2)
	}

	// --db: the newest n messages straight from the file, no server needed.
	out, code := runCmd(t, "tail", "--db", db, "--device", "127.0.0.71", "-n", "2", "--color", "never")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasSuffix(lines[0], "temp=21.5") || strings.Contains(out, "\x1b") {
		t.Fatalf("tail --db: exit %d, output %q", code, out)
	}
	// A bad token is an error, not a retry loop.
	srv2 := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--http-token", "right",
		"--db", filepath.Join(t.TempDir(), "x.db"))
	bad := startTail(t, "--server", "http://"+srv2.ready.HTTP, "--token", "wrong")
	select {
	case <-bad.lines:
	case <-time.After(10 * time.Second):
		t.Fatal("tail with a wrong token kept running")
	}
	err := <-bad.exited
	if err == nil || !strings.Contains(bad.stderr.String(), "401") {
		t.Errorf("tail with a wrong token: %v, stderr %q", err, bad.stderr.String())
	}
}
