package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
)

// The device side survives its own crash: `inlet send --ack --outbox` is killed
// with SIGKILL mid-stream and started again on the same outbox; everything the
// first run had taken into its outbox reaches the real server exactly once.
func TestSenderKilledResumesFromOutbox(t *testing.T) {
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db)
	outbox := t.TempDir()
	send := func(count string) *exec.Cmd {
		return exec.Command(inletBinary(t), "send", "--ack", "--mode", "stream", "--addr", srv.ready.TCP,
			"--device", "survivor", "--outbox", outbox, "--every", "0", "--count", count)
	}
	first := send("100000")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()

	second := send("500")
	second.Args = append(second.Args, "--json")
	out, err := second.Output()
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	var summary struct{ Acked int64 }
	if err := json.Unmarshal(out, &summary); err != nil {
		t.Fatalf("summary %q: %v", out, err)
	}
	// More than its own 500 acknowledged: it delivered what the killed run left.
	if summary.Acked <= 500 {
		t.Fatalf("second run acknowledged %d: the killed run left nothing in its outbox to resume", summary.Acked)
	}
	srv.stop(t, syscall.SIGTERM)

	bySeq := make(map[string]map[int64]int) // boot -> seq -> rows
	for _, m := range messages(t, db, inlet.Query{Device: "survivor"}) {
		if bySeq[m.Boot] == nil {
			bySeq[m.Boot] = make(map[int64]int)
		}
		bySeq[m.Boot][m.Seq]++
	}
	if len(bySeq) != 2 {
		t.Fatalf("%d boots stored, want 2 (one per run)", len(bySeq))
	}
	var total int
	for boot, seqs := range bySeq {
		// Each boot's messages are 1..n, each once: nothing lost, nothing doubled.
		for s := int64(1); s <= int64(len(seqs)); s++ {
			if seqs[s] != 1 {
				t.Fatalf("boot %s: seq %d stored %d times (of %d seqs)", boot, s, seqs[s], len(seqs))
			}
		}
		total += len(seqs)
	}
	if dev := devices(t, db)["survivor"]; dev.Gaps != 0 || dev.Missing != 0 || dev.Messages != int64(total) {
		t.Errorf("device %+v", dev)
	}
	t.Logf("first run left its outbox for the second: %d messages over 2 boots, each once", total)
}
