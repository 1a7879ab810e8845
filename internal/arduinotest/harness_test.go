package arduinotest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet/internal/inlettest"
	"github.com/inletdev/inlet/internal/testenv"
)

// root is the repository root (this package is internal/arduinotest).
func root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildOnce  sync.Once
	buildDir   string
	devicePath string
	buildErr   error
)

// binaries builds the real inlet binary and the host device (the library with
// g++ -Wall -Wextra -Werror), once per test run.
func binaries(t testing.TB) (inlet, device string) {
	t.Helper()
	gxx := testenv.LookPath(t, "g++ is needed to build the library for the host (Debian: apt-get install g++)", "g++")
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "inlet-arduinotest-")
		if buildErr != nil {
			return
		}
		r := root(t)
		devicePath = filepath.Join(buildDir, "device")
		cmd := exec.Command(gxx, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-O2", "-DINLET_HOST",
			"-Iarduino/host/include", "-Iarduino/Inlet/src",
			"arduino/Inlet/src/Inlet.cpp", "arduino/host/posix.cpp", "arduino/host/device.cpp", "-o", devicePath)
		cmd.Dir = r
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("g++ (host build of the library): %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return inlettest.Binary(t), devicePath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	inlettest.Cleanup()
	os.Exit(code)
}

// ---- the server

type readyInfo struct {
	Event string `json:"event"`
	TCP   string `json:"tcp"`
	UDP   string `json:"udp"`
}

type server struct {
	cmd    *exec.Cmd
	ready  readyInfo
	stderr *inlettest.Buffer
	exited chan error
}

// startServer runs `inlet serve` on loopback ports chosen at run time with db.
// Extra flags go after the defaults.
func startServer(t *testing.T, db string, flags ...string) *server {
	t.Helper()
	inlet, _ := binaries(t)
	args := append([]string{"serve", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "", "--db", db}, flags...)
	cmd := exec.Command(inlet, args...)
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
		err := <-s.exited
		s.exited <- err
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
		io.Copy(io.Discard, stdout)
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

// kill ends the server at once (SIGKILL: nothing is flushed).
func (s *server) kill(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	err := <-s.exited
	s.exited <- err
}

// stop ends the server cleanly (SIGTERM) and waits for it.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		s.exited <- err
		if err != nil {
			t.Fatalf("server exit: %v\n%s", err, s.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("server still running 15s after SIGTERM")
	}
}

// ---- what the server stored, through the CLI

type bootInfo struct {
	Boot         string     `json:"boot"`
	Messages     int64      `json:"messages"`
	LastSeq      int64      `json:"last_seq"`
	Durable      int64      `json:"durable"`
	Missing      int64      `json:"missing"`
	MissingRange [][2]int64 `json:"missing_ranges"`
}

type deviceInfo struct {
	Device     string     `json:"device"`
	Messages   int64      `json:"messages"`
	Gaps       int64      `json:"gaps"`
	Missing    int64      `json:"missing"`
	Duplicates int64      `json:"duplicates"`
	Resets     int64      `json:"resets"`
	Boots      []bootInfo `json:"boots"`
}

// devices is `inlet devices --format json`, by device id.
func devices(t *testing.T, db string) map[string]deviceInfo {
	t.Helper()
	inlet, _ := binaries(t)
	out, err := exec.Command(inlet, "devices", "--db", db, "--format", "json").Output()
	if err != nil {
		t.Fatalf("inlet devices: %v", err)
	}
	var list []deviceInfo
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("inlet devices: %v\n%s", err, out)
	}
	m := make(map[string]deviceInfo)
	for _, d := range list {
		m[d.Device] = d
	}
	return m
}

type row struct {
	Device  string  `json:"device"`
	Boot    *string `json:"boot"`
	Seq     *int64  `json:"seq"`
	Payload *string `json:"payload"`
}

// rows is `inlet export` for one device.
func rows(t *testing.T, db, device string) []row {
	t.Helper()
	inlet, _ := binaries(t)
	out, err := exec.Command(inlet, "export", "--db", db, "--device", device).Output()
	if err != nil {
		t.Fatalf("inlet export: %v", err)
	}
	var rs []row
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var r row
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("inlet export: %v", err)
		}
		rs = append(rs, r)
	}
	return rs
}

// checkRows asserts that device has exactly the seqs want of boot stored, each
// once, each with the payload the device gave it ("r=<seq>", perhaps padded).
func checkRows(t *testing.T, db, device, boot string, want []int64) {
	t.Helper()
	seen := make(map[int64]int)
	for _, r := range rows(t, db, device) {
		if r.Boot == nil || r.Seq == nil || r.Payload == nil {
			t.Fatalf("row without boot, seq or payload: %+v", r)
		}
		if *r.Boot != boot {
			continue
		}
		if p := fmt.Sprintf("r=%d", *r.Seq); *r.Payload != p && !strings.HasPrefix(*r.Payload, p+" ") {
			t.Errorf("seq %d stored with payload %q", *r.Seq, *r.Payload)
		}
		seen[*r.Seq]++
	}
	for _, s := range want {
		if seen[s] != 1 {
			t.Errorf("boot %s seq %d stored %d times, want once", boot, s, seen[s])
		}
		delete(seen, s)
	}
	for s, n := range seen {
		t.Errorf("boot %s seq %d stored %d times, want none", boot, s, n)
	}
}

func seqs(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// ---- the device

// status is the JSON line the device answers each command with.
type status struct {
	Cmd       string `json:"cmd"`
	OK        bool   `json:"ok"`
	Boot      string `json:"boot"`
	Next      int64  `json:"next"`
	Pending   int    `json:"pending"`
	Acked     int64  `json:"acked"`
	Dropped   int64  `json:"dropped"`
	Resumed   bool   `json:"resumed"`
	Connected bool   `json:"connected"`
	Error     string `json:"error"`
	Capacity  int    `json:"capacity"`
}

type device struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    chan status
	stderr *inlettest.Buffer
	exited chan error
	begin  status
}

// startDevice runs the host device: transport "tcp" or "udp", the server at
// addr (host:port), RTC memory in the file rtc, and a token if one is given.
func startDevice(t *testing.T, transport, addr, id, rtc string, token ...string) *device {
	t.Helper()
	_, bin := binaries(t)
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("address %q", addr)
	}
	cmd := exec.Command(bin, append([]string{transport, host, port, id}, token...)...)
	cmd.Env = append(os.Environ(), "INLET_RTC_FILE="+rtc)
	d := &device{t: t, cmd: cmd, out: make(chan status, 16), stderr: new(inlettest.Buffer), exited: make(chan error, 1)}
	cmd.Stderr = d.stderr
	var err error
	if d.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var s status
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				t.Errorf("device said %q: %v", sc.Text(), err)
				continue
			}
			d.out <- s
		}
		close(d.out)
		d.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		d.stdin.Close()
		cmd.Process.Kill()
		for range d.out {
		}
	})
	d.begin = d.next("begin", 10*time.Second)
	if !d.begin.OK {
		t.Fatalf("device begin failed: %+v", d.begin)
	}
	return d
}

func (d *device) next(what string, timeout time.Duration) status {
	d.t.Helper()
	select {
	case s, ok := <-d.out:
		if !ok {
			d.t.Fatalf("device exited during %s: %s", what, d.stderr.String())
		}
		return s
	case <-time.After(timeout):
		d.t.Fatalf("device: no answer to %s within %s", what, timeout)
	}
	return status{}
}

// do sends one command and waits for its status line.
func (d *device) do(cmd string, timeout time.Duration) status {
	d.t.Helper()
	d.send(cmd)
	return d.next(cmd, timeout)
}

// send sends one command without waiting (collect its answer with next).
func (d *device) send(cmd string) {
	d.t.Helper()
	if _, err := fmt.Fprintln(d.stdin, cmd); err != nil {
		d.t.Fatalf("device %s: %v", cmd, err)
	}
}

// sleep is ESP.deepSleep: the process exits, its RTC file stays.
func (d *device) sleep() status {
	d.t.Helper()
	s := d.do("sleep", 5*time.Second)
	select {
	case err := <-d.exited:
		if err != nil {
			d.t.Fatalf("device exit at deep sleep: %v", err)
		}
	case <-time.After(5 * time.Second):
		d.t.Fatal("device still running after deep sleep")
	}
	return s
}
