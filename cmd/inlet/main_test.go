package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/internal/inlettest"
	"github.com/inletdev/inlet/internal/pgtest"
	"github.com/inletdev/inlet/sqlite"
)

// testLogger sends server logs to the test log, so a failure shows them.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// testConfig is a server on free loopback ports with a database in a temp dir.
func testConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	cfg.TCP, cfg.UDP, cfg.HTTP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.DB = filepath.Join(t.TempDir(), "inlet.db")
	return cfg
}

// MustRun starts a server in-process and closes it when the test ends.
func MustRun(t testing.TB, cfg Config) *Main {
	t.Helper()
	m := NewMain(cfg, testLogger(t))
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Cleanup(func() {
		// Bounded: a test that failed with a failing store must not hang here.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		m.Close(ctx)
	})
	return m
}

// MustClose shuts the server down and fails the test if anything was not stored.
func MustClose(t testing.TB, m *Main) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func (m *Main) tcpAddr() string { return m.tcp.Addr().String() }
func (m *Main) udpAddr() string { return m.udp.Addr().String() }

// openDB opens the test database read-only, as inlet export does.
func openDB(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open db: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func messages(t testing.TB, path string, q inlet.Query) []inlet.Stored {
	t.Helper()
	var out []inlet.Stored
	err := openDB(t, path).Messages(context.Background(), q, func(m *inlet.Stored) error {
		out = append(out, *m)
		return nil
	})
	if err != nil {
		t.Fatalf("messages: %v", err)
	}
	return out
}

func payloads(ms []inlet.Stored) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Payload)
	}
	return out
}

func devices(t testing.TB, path string) map[string]inlet.Device {
	t.Helper()
	ds, err := openDB(t, path).Devices(context.Background())
	if err != nil {
		t.Fatalf("devices: %v", err)
	}
	out := make(map[string]inlet.Device)
	for _, d := range ds {
		out[d.ID] = d
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes; no test sleeps blindly.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitCommitted waits until the server has committed n messages in all: a
// condition, with room for a loaded machine where the race detector makes SQLite
// about 20x slower.
func waitCommitted(t testing.TB, m *Main, n int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d committed messages", n), 60*time.Second, func() bool {
		return m.Stats.Committed.Load() >= n
	})
}

// dialFrom connects to addr from a given loopback source address, so that each
// emulated device has an IP of its own.
func dialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	return c
}

// sendOnce is the tutorial sketch: connect, print one line, close.
func sendOnce(src, addr, line string) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(c, line); err != nil {
		c.Close()
		return err
	}
	return c.Close()
}

func TestMain(m *testing.M) {
	code := pgtest.Main(m) // m.Run, then stops the PostgreSQL it started
	inlettest.Cleanup()
	os.Exit(code)
}
