package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/internal/testenv"
)

func TestHealthCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db)
	out, err := exec.Command(inletBinary(t), "health", "--http", srv.ready.HTTP).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "/readyz") {
		t.Fatalf("inlet health on a ready server: %v\n%s", err, out)
	}
	srv.stop(t, syscall.SIGTERM)
	cmd := exec.Command(inletBinary(t), "health", "--http", srv.ready.HTTP)
	out, err = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "no answer") {
		t.Fatalf("inlet health with no server: exit %d, %v\n%s", cmd.ProcessState.ExitCode(), err, out)
	}
}

// The service file is valid for systemd (systemd-analyze verify checks every
// directive and that ExecStart names an executable).
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := testenv.LookPath(t, "no systemd-analyze (apt-get install systemd)", "systemd-analyze")
	unit, err := os.ReadFile("../../contrib/systemd/inlet.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/inlet serve") {
		t.Fatal("the unit no longer starts /usr/local/bin/inlet serve")
	}
	// Point ExecStart at the binary just built: verify checks that it exists.
	unit = []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/inlet", inletBinary(t)))
	path := filepath.Join(t.TempDir(), "inlet.service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// A broken directive must be caught (it is reported, though the exit status stays
	// 0), or this test proves nothing.
	bad := strings.Replace(string(unit), "NoNewPrivileges=yes", "NoNewPrivileges=maybe", 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command(analyze, "verify", path).CombinedOutput(); !strings.Contains(string(out), "maybe") {
		t.Fatalf("systemd-analyze verify did not notice a bad directive:\n%s", out)
	}
}

// inlet prune runs beside a serving inlet (which holds the database's writer
// lock), deletes what is older than the bound, and the server goes on storing.
func TestPruneBesideServer(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db)
	for i := 1; i <= 20; i++ {
		if err := sendOnce("127.0.0.1", srv.ready.TCP, fmt.Sprintf("%d\r\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitRows(t, db, 20)
	cmd := exec.Command(inletBinary(t), "prune", "--db", db, "--before", "2200-01-01")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "deleted 20 messages") {
		t.Fatalf("inlet prune beside the server: %v\n%s", err, out)
	}
	if err := sendOnce("127.0.0.1", srv.ready.TCP, "21\r\n"); err != nil {
		t.Fatal(err)
	}
	waitRows(t, db, 1)
	srv.stop(t, syscall.SIGTERM)
	out, _ = exec.Command(inletBinary(t), "devices", "--db", db, "--format", "json").CombinedOutput()
	if !strings.Contains(string(out), `"messages": 21`) {
		t.Fatalf("the device's accounting after the prune:\n%s", out)
	}
}

// waitRows waits until the database at db holds n messages.
func waitRows(t *testing.T, db string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := len(messages(t, db, inlet.Query{}))
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages stored, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serve --retain deletes what is older than the retention while it serves, and
// keeps the device's accounting.
func TestServeRetain(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db, "--retain", "2s")
	for i := 1; i <= 10; i++ {
		if err := sendOnce("127.0.0.1", srv.ready.TCP, fmt.Sprintf("%d\r\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitRows(t, db, 10)
	waitRows(t, db, 0) // pruned within 2 s of age plus one 1 s period
	if err := sendOnce("127.0.0.1", srv.ready.TCP, "11\r\n"); err != nil {
		t.Fatal(err)
	}
	waitRows(t, db, 1)
	srv.stop(t, syscall.SIGTERM)
	if !strings.Contains(srv.stderr.String(), "retention: deleted old messages") {
		t.Fatalf("no retention log line:\n%s", srv.stderr.String())
	}
	out, _ := exec.Command(inletBinary(t), "devices", "--db", db, "--format", "json").CombinedOutput()
	if !strings.Contains(string(out), `"messages": 11`) {
		t.Fatalf("the device's accounting after retention:\n%s", out)
	}
}
