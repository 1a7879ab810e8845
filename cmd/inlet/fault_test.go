package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/internal/testenv"
)

// mountSmallDisk mounts a tmpfs of the given size, or skips the test where that is
// not possible (not root, no mount).
func mountSmallDisk(t *testing.T, size string) string {
	t.Helper()
	testenv.Root(t, "mounts a small tmpfs")
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, fmt.Sprintf("cannot mount tmpfs: %v %s", err, out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func httpStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A full disk: the server keeps running, reports unready, pushes back on the TCP
// client, and once space returns stores every line the client wrote, in order.
func TestDiskFull(t *testing.T) {
	dir := mountSmallDisk(t, "1m")
	cfg := testConfig(t)
	cfg.DB = filepath.Join(dir, "inlet.db")
	m := MustRun(t, cfg)
	readyz := "http://" + m.ReadyInfo().HTTP + "/readyz"
	if s := httpStatus(readyz); s != 200 {
		t.Fatalf("readyz before: %d", s)
	}

	c := dialFrom(t, "127.0.0.40", m.tcpAddr())
	var written atomic.Int64
	var stop atomic.Bool
	done := make(chan error, 1)
	pad := strings.Repeat("p", 200)
	go func() {
		defer c.Close()
		for n := int64(1); !stop.Load(); {
			var chunk strings.Builder
			for range 100 {
				fmt.Fprintf(&chunk, "%d %s\r\n", n, pad)
				n++
			}
			c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write([]byte(chunk.String())); err != nil {
				done <- err
				return
			}
			written.Store(n - 1)
		}
		done <- nil
	}()
	waitFor(t, "a failing commit", 20*time.Second, func() bool { return m.Stats.StoreErrors.Load() > 0 })
	if s := httpStatus(readyz); s != http.StatusServiceUnavailable {
		t.Errorf("readyz while the disk is full: %d, want 503", s)
	}
	// Backpressure: once the bounded queue and the socket buffers are full, the
	// client's writes stall instead of the server buffering without bound.
	stalled := false
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		before := written.Load()
		time.Sleep(300 * time.Millisecond)
		if written.Load() == before {
			stalled = true
			break
		}
	}
	if !stalled {
		t.Errorf("client kept writing (%d lines) while the store was failing", written.Load())
	}
	if q := m.Stats.QueueDepth.Load(); q > 4*8192 {
		t.Errorf("queue holds %d messages: more than its bound", q)
	}
	if out, err := exec.Command("mount", "-o", "remount,size=256m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	waitFor(t, "recovery", 20*time.Second, func() bool { return httpStatus(readyz) == 200 })
	stop.Store(true)
	if err := <-done; err != nil {
		t.Fatalf("client: %v", err)
	}
	total := written.Load()
	waitCommitted(t, m, total)
	MustClose(t, m)
	t.Logf("%d lines, %d failed commits retried", total, m.Stats.StoreErrors.Load())

	d := devices(t, cfg.DB)["127.0.0.40"]
	if d.Messages != total || d.Gaps != 0 || d.Duplicates != 0 {
		t.Errorf("device %+v, want %d messages without loss", d, total)
	}
	ms := messages(t, cfg.DB, inlet.Query{})
	if int64(len(ms)) != total {
		t.Fatalf("stored %d rows, want %d", len(ms), total)
	}
	for i, msg := range ms {
		if want := fmt.Sprintf("%d %s", i+1, pad); string(msg.Payload) != want {
			t.Fatalf("row %d: %.20q…, want %.20q…", i, msg.Payload, want)
		}
	}
}

// Shutdown while the store cannot commit and acknowledged clients wait for acks:
// Close gives up when its context ends, names what was not stored, and never hangs.
func TestShutdownWithFailingStoreAndAckedClients(t *testing.T) {
	dir := mountSmallDisk(t, "1m")
	cfg := testConfig(t)
	cfg.DB = filepath.Join(dir, "inlet.db")
	m := MustRun(t, cfg)
	a, ok := dialAck(t, m.tcpAddr(), "INLET/1 id=stuck boot=b1\n")
	if ok != "INLET/1 OK last=0" {
		t.Fatal(ok)
	}
	pad := strings.Repeat("p", 200)
	go func() {
		for n := 1; ; n++ {
			a.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := fmt.Fprintf(a.c, "%d %s\n", n, pad); err != nil {
				return
			}
		}
	}()
	waitFor(t, "a failing commit", 20*time.Second, func() bool { return m.Stats.StoreErrors.Load() > 0 })
	// Fill the commit queue, then let a connect-per-message device arrive: its
	// line is read by the accept loop itself, which then waits for queue space.
	// The queue is full when it stops growing: by count, or by bytes first
	// (which depends on how the reads split the stream).
	last, since := int64(-1), time.Now()
	waitFor(t, "a full queue", 30*time.Second, func() bool {
		if d := m.Stats.QueueDepth.Load(); d != last {
			last, since = d, time.Now()
			return false
		}
		return last > 0 && time.Since(since) > time.Second
	})
	go sendOnce("127.0.0.41", m.tcpAddr(), "stuck-in-accept\n")
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err := m.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "not stored") {
		t.Errorf("close with a full disk: %v, want an error naming unstored messages", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("close took %s with a 1s context", d)
	}
}
