package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// stalledGET sends a GET and never reads the answer, with small socket buffers
// so the server's writes block soon.
func stalledGET(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetReadBuffer(4096)
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: inlet\r\n\r\n", path)
	return c
}

// fill stores n messages of about 400 bytes from one persistent connection.
func fill(t *testing.T, m *Main, n int) {
	t.Helper()
	c := dialFrom(t, "127.0.0.90", m.tcpAddr())
	w := bufio.NewWriterSize(c, 64<<10)
	pad := strings.Repeat("x", 400)
	for i := range n {
		fmt.Fprintf(w, "%d %s\n", i, pad)
	}
	w.Flush()
	c.Close()
	waitFor(t, fmt.Sprintf("%d stored", n), 60*time.Second, func() bool { return m.Stats.Committed.Load() >= int64(n) })
}

// A client that asks for a big export and stops reading must not keep a read
// transaction open: the WAL must stay checkpointable (else it grows without
// bound) and shutdown must not wait for that client.
func TestHTTPStalledExportHoldsNoReadTransaction(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	fill(t, m, 30000) // ~14 MB of NDJSON: far more than the socket buffers hold
	stalledGET(t, m.ReadyInfo().HTTP, "/api/messages?format=ndjson")
	time.Sleep(300 * time.Millisecond) // the server writes until the buffers are full

	db, err := sql.Open("sqlite", "file:"+cfg.DB+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A TRUNCATE checkpoint reports busy while any reader holds a snapshot.
	// Between chunks the export holds none, so one attempt of a few succeeds.
	var busy, logPages, done int
	ok := false
	for range 20 {
		if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done); err != nil {
			t.Fatal(err)
		}
		if busy == 0 {
			ok = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ok {
		t.Errorf("the WAL cannot be checkpointed while an export client stalls (busy=%d): a read transaction stays open", busy)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := m.Close(ctx); err != nil {
		t.Errorf("close with a stalled export: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("close took %s with a stalled export client", d)
	}
}

// A stalled event-stream client ends at once when the server shuts down, rather
// than after its write timeout.
func TestHTTPStalledStreamDoesNotDelayShutdown(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	stalledGET(t, m.ReadyInfo().HTTP, "/api/stream?after_id=0")
	fill(t, m, 30000)
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := m.Close(ctx); err != nil {
		t.Errorf("close with a stalled stream: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("close took %s with a stalled stream (its write timeout is 10 s)", d)
	}
}

// Pages are served only at / and /login, with their CSP: /assets/ serves
// scripts and styles, never HTML.
func TestHTTPAssetsServeNoPages(t *testing.T) {
	m := MustRun(t, testConfig(t))
	base := htBase(m)
	for _, p := range []string{"/assets/", "/assets/index.html", "/assets/login.html", "/assets/vendor/"} {
		if resp, _ := htGet(t, base+p); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	resp, _ := htGet(t, base+"/assets/app.js")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET /assets/app.js: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	resp, _ = htGet(t, base+"/")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("GET /: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
}
