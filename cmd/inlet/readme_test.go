package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeSends returns the `go run ./cmd/inlet send …` lines of the README's
// first steps ("Point your device at it" and "Watch it live"), in order, as
// shell commands without their comments.
func readmeSends(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "## Point your device at it")
	end := strings.Index(text, "## Look at the data")
	if start < 0 || end < start {
		t.Fatal("README: no first steps between \"## Point your device at it\" and \"## Look at the data\"")
	}
	var cmds []string
	inSh := false
	for _, line := range strings.Split(text[start:end], "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			inSh = true
		case strings.HasPrefix(line, "```"):
			inSh = false
		case inSh && strings.Contains(line, "go run ./cmd/inlet send"):
			if i := strings.Index(line, "  #"); i >= 0 {
				line = line[:i]
			}
			cmds = append(cmds, strings.TrimSpace(line))
		}
	}
	return cmds
}

// The README's first steps, followed literally against the real binary (on
// ports chosen at run time): the first device, the tutorial sketch, becomes a
// counter with nothing lost, and every device the README adds beside it is
// green in /api/devices: none shows a loss, a duplicate or a reset.
func TestReadmeFirstRunIsGreen(t *testing.T) {
	cmds := readmeSends(t)
	if len(cmds) < 2 || !strings.HasSuffix(cmds[0], "go run ./cmd/inlet send") {
		t.Fatalf("README first steps: %q, want `go run ./cmd/inlet send` first", cmds)
	}
	bin := inletBinary(t)
	srv := startBinary(t, "--db", filepath.Join(t.TempDir(), "inlet.db"),
		"--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0")
	// The README's ports are the defaults; this server's are chosen at run time.
	shell := func(ctx context.Context, c string) *exec.Cmd {
		addr := srv.ready.TCP
		if strings.Contains(c, "--mode udp") {
			addr = srv.ready.UDP
		}
		c = strings.Replace(c, "go run ./cmd/inlet send", bin+" send --addr "+addr, 1)
		if !strings.Contains(c, "|") {
			c = "exec " + c // so that a signal reaches inlet send itself
		}
		return exec.CommandContext(ctx, "sh", "-c", c)
	}
	type dev struct {
		Device, Kind string
		Clean        bool
		Messages     int64
		Lost         *int64
	}
	devices := func() map[string]dev {
		resp, err := http.Get("http://" + srv.ready.HTTP + "/api/devices")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ds []dev
		if err := json.NewDecoder(resp.Body).Decode(&ds); err != nil {
			t.Fatal(err)
		}
		m := make(map[string]dev)
		for _, d := range ds {
			m[d.Device] = d
			if !d.Clean {
				t.Fatalf("device %s is red in /api/devices: %+v", d.Device, d)
			}
		}
		return m
	}

	// The first step, left running: 127.0.0.1 is a counter with 0 lost after
	// nine readings, a second each.
	first := shell(context.Background(), cmds[0])
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Process.Kill(); first.Wait() })
	waitFor(t, "127.0.0.1 a counter with 0 lost", 30*time.Second, func() bool {
		d, ok := devices()["127.0.0.1"]
		return ok && d.Kind == "counter" && d.Lost != nil && *d.Lost == 0
	})

	// The next steps, beside it, each to the end.
	for _, c := range cmds[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		out, err := shell(ctx, c).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
		devices() // nobody red meanwhile
	}
	ds := devices()
	if d := ds["127.0.0.1"]; d.Kind != "counter" {
		t.Errorf("the first device after the README's steps: %+v", d)
	}
	// Every device the README named is there, and its loss is known.
	named := regexp.MustCompile(`--device (\S+)`)
	for _, c := range cmds {
		if m := named.FindStringSubmatch(c); m != nil {
			if d, ok := ds[m[1]]; !ok || d.Lost == nil {
				t.Errorf("device %s of %q: %+v", m[1], c, d)
			}
		}
	}
	for name, d := range ds {
		if d.Kind == "values" {
			t.Errorf("device %s: values, loss unknown, after the README's steps: %+v", name, d)
		}
	}
	if len(ds) < len(cmds) {
		t.Errorf("%d devices after %d commands: %+v", len(ds), len(cmds), ds)
	}
	first.Process.Signal(syscall.SIGINT)
	first.Wait()
	devices()
}
