package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ready is the JSON line inlet serve and inlet bench-baseline print once they
// listen.
type ready struct {
	Event string `json:"event"`
	TCP   string `json:"tcp"`
	UDP   string `json:"udp"`
	TLS   string `json:"tls"`
	HTTP  string `json:"http"`
}

// child is a receiver process started by the benchmark. Every path out of a
// run kills it (kill is safe to call at any time, and twice).
type child struct {
	name   string
	cmd    *exec.Cmd
	pid    int
	ready  ready
	pinned string // the CPUs it is pinned to, and how
	out    *lineWriter
	errs   *tailBuffer
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// startChild starts bin with args, pinned to cpus if any, and waits for its
// JSON ready line.
func startChild(ctx context.Context, name, bin string, args []string, cpus []int) (*child, error) {
	argv := append([]string{bin}, args...)
	how := ""
	if len(cpus) > 0 {
		if ts, err := exec.LookPath("taskset"); err == nil {
			argv = append([]string{ts, "-c", cpuList(cpus)}, argv...)
			how = "taskset"
		} else {
			how = "sched_setaffinity"
		}
	}
	c := &child{
		name:   name,
		cmd:    exec.Command(argv[0], argv[1:]...),
		out:    &lineWriter{first: make(chan []byte, 1)},
		errs:   &tailBuffer{max: 16 << 10},
		exited: make(chan struct{}),
	}
	c.cmd.Stdout = c.out
	c.cmd.Stderr = c.errs
	c.cmd.SysProcAttr = ChildAttr()
	c.cmd.WaitDelay = 5 * time.Second
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c.pid = c.cmd.Process.Pid
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	fail := func(err error) (*child, error) {
		c.kill()
		return nil, err
	}
	if how == "sched_setaffinity" {
		if err := PinProcess(c.pid, cpus); err != nil {
			return fail(fmt.Errorf("%s: %w", name, err))
		}
	}
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case line := <-c.out.first:
		if err := json.Unmarshal(line, &c.ready); err != nil || c.ready.Event != "ready" {
			return fail(fmt.Errorf("%s: ready line %q: want {\"event\":\"ready\",...}", name, line))
		}
	case <-c.exited:
		return fail(c.exitError("before it was ready"))
	case <-timer.C:
		return fail(fmt.Errorf("%s: no ready line after 20s%s", name, c.errs.tail()))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if how == "sched_setaffinity" {
		// Threads started before the first call were not pinned.
		if err := PinProcess(c.pid, cpus); err != nil {
			return fail(fmt.Errorf("%s: %w", name, err))
		}
	}
	if how != "" {
		c.pinned = cpuList(cpus) + " (" + how + ")"
	}
	return c, nil
}

func (c *child) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

func (c *child) exitError(when string) error {
	<-c.exited
	return fmt.Errorf("%s exited %s: %v%s", c.name, when, c.err, c.errs.tail())
}

// kill ends the process at once and waits for it.
func (c *child) kill() {
	if c.hasExited() {
		return
	}
	c.cmd.Process.Kill()
	<-c.exited
}

// stop asks the process to finish (SIGTERM) and kills it if it has not within timeout.
func (c *child) stop(timeout time.Duration) error {
	if c.hasExited() {
		return c.exitError("before it was stopped")
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.kill()
		return fmt.Errorf("stop %s: %w", c.name, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.exited:
		if c.err != nil {
			return fmt.Errorf("stop %s: %w%s", c.name, c.err, c.errs.tail())
		}
		return nil
	case <-t.C:
		c.kill()
		return fmt.Errorf("stop %s: still running %s after SIGTERM, killed%s", c.name, timeout, c.errs.tail())
	}
}

func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// lineWriter takes a child's stdout: the first line is its ready line, the last
// one (the baseline's final counts) is kept.
type lineWriter struct {
	mu      sync.Mutex
	partial []byte
	first   chan []byte
	sent    bool
	last    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		line, rest, ok := bytes.Cut(w.partial, []byte{'\n'})
		if !ok {
			break
		}
		line = bytes.Clone(line)
		w.partial = rest
		if !w.sent {
			w.sent = true
			w.first <- line
		} else {
			w.last = line
		}
	}
	if len(w.partial) > 1<<20 {
		w.partial = nil // not a line anybody will read
	}
	return len(p), nil
}

func (w *lineWriter) lastLine() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// tailBuffer keeps the end of a child's stderr, to show when it fails.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// tail is the last lines written, ready to append to an error message.
func (t *tailBuffer) tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.b
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	return "\n" + strings.TrimRight(string(b), "\n")
}
