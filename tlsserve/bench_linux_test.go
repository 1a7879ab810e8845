package tlsserve_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet/tlsserve"
	"github.com/inletdev/inlet/wire"
)

// threadCPU is the CPU time of the calling OS thread (Linux RUSAGE_THREAD).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil { // RUSAGE_THREAD
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHandshake measures the server's CPU per handshake: the server side
// runs on a goroutine locked to its own OS thread, and the thread's CPU time
// is read around each Handshake. server-µs/op is that CPU; handshakes/s/core
// is its inverse. ns/op is the wall time of a whole connection (client and
// server on the same two cores, loopback TCP), for scale only. "resumed" dials
// with a client session cache holding a ticket (TLS 1.2: no key exchange;
// TLS 1.3: PSK with ECDHE, no certificate signature).
func BenchmarkHandshake(b *testing.B) {
	for _, bc := range []struct {
		name    string
		version uint16
		resume  bool
		rsaBits int
		curves  []tls.CurveID // the client's; nil: Go's default (X25519MLKEM768 first in TLS 1.3)
	}{
		{"TLS1.3-ECDSA-full", tls.VersionTLS13, false, 0, nil},
		{"TLS1.3-ECDSA-resumed", tls.VersionTLS13, true, 0, nil},
		{"TLS1.3-ECDSA-full-X25519", tls.VersionTLS13, false, 0, []tls.CurveID{tls.X25519}},
		{"TLS1.2-ECDSA-full", tls.VersionTLS12, false, 0, nil},
		{"TLS1.2-ECDSA-resumed", tls.VersionTLS12, true, 0, nil},
		{"TLS1.2-RSA2048-full", tls.VersionTLS12, false, 2048, nil},
	} {
		b.Run(bc.name, func(b *testing.B) { benchHandshake(b, bc.version, bc.resume, bc.rsaBits, bc.curves) })
	}
}

func benchHandshake(b *testing.B, version uint16, resume bool, rsaBits int, curves []tls.CurveID) {
	_, _, ss := testCert(b, b.TempDir(), rsaBits)
	ts, err := tlsserve.New(mustPair(b, ss))
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	conns := make(chan net.Conn)
	go func() {
		defer close(conns)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	var cpu atomic.Int64
	var handshakes atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for c := range conns {
			t0 := threadCPU()
			conn, err := ts.Handshake(context.Background(), c, 10*time.Second)
			cpu.Add(int64(threadCPU() - t0))
			handshakes.Add(1)
			if err == nil {
				conn.Write([]byte("k")) // the client reads it, and with it a TLS 1.3 ticket
				conn.Close()
			}
		}
	}()
	cfg := clientConfig(ss)
	cfg.MinVersion, cfg.MaxVersion = version, version
	cfg.CurvePreferences = curves
	if resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	}
	dial := func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		var k [1]byte
		if n, err := c.Read(k[:]); n != 1 { // (1, EOF) when the close_notify came with it
			b.Fatal(err)
		}
		if c.ConnectionState().DidResume != resume {
			b.Fatalf("DidResume = %v", !resume)
		}
		c.Close()
	}
	if resume {
		cfg.ClientSessionCache.Put(ss.Cert.Subject.CommonName, nil)
		dialFirst(b, ln.Addr().String(), cfg) // a full handshake fills the cache
	}
	cpu.Store(0)
	handshakes.Store(0)
	b.ResetTimer()
	for range b.N {
		dial()
	}
	b.StopTimer()
	ln.Close()
	<-done
	per := float64(cpu.Load()) / float64(handshakes.Load())
	b.ReportMetric(per/1e3, "server-µs/op")
	b.ReportMetric(1e9/per, "handshakes/s/core")
}

// dialFirst makes one full handshake and reads the first byte (and the
// ticket), so the session cache holds a ticket.
func dialFirst(b *testing.B, addr string, cfg *tls.Config) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		b.Fatal(err)
	}
	var k [1]byte
	c.Read(k[:])
	c.Close()
}

// The idle-connection measurement: 10,000 TLS connections from a separate
// process (this test binary, re-run as the client), each has said hello and
// been answered, then sits idle. The server is written as listen's TCP reader
// is: one goroutine per connection that holds no read buffer while idle
// (Conn.Wait), borrowing a pooled 16 KiB buffer only to read.
const idleEnv = "TLSSERVE_IDLE_CLIENT"

func TestMain(m *testing.M) {
	if v := os.Getenv(idleEnv); v != "" {
		os.Exit(idleClients(v))
	}
	os.Exit(m.Run())
}

// idleClients is the client process: "addr,n,version" opens n connections,
// says hello on each, reads the answer, prints "ready" and holds them until
// stdin closes.
func idleClients(spec string) int {
	var addr string
	var n int
	var version uint16
	if _, err := fmt.Sscanf(spec, "%s %d %d", &addr, &n, &version); err != nil {
		fmt.Println("bad spec", spec, err)
		return 2
	}
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: version, MaxVersion: version}
	conns := make([]*tls.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var failed atomic.Int64
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				failed.Add(1)
				return
			}
			fmt.Fprintf(c, "INLET/1 id=idle-%d boot=1\n", i)
			line, err := bufio.NewReaderSize(c, 64).ReadString('\n')
			if err != nil || line != "INLET/1 OK last=0\n" {
				failed.Add(1)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	fmt.Printf("ready %d failed\n", failed.Load())
	var b [1]byte
	os.Stdin.Read(b[:])
	return 0
}

var readBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// serveIdle is the server side of one idle-test connection.
func serveIdle(ts *tlsserve.Server, c net.Conn, answered *atomic.Int64) {
	conn, err := ts.Handshake(context.Background(), c, 30*time.Second)
	if err != nil {
		return
	}
	defer conn.Close()
	var line []byte
	for {
		if conn.Wait() != nil {
			return
		}
		bp := readBufs.Get().(*[]byte)
		n, err := conn.Read(*bp)
		line = append(line, (*bp)[:n]...)
		readBufs.Put(bp)
		if err != nil {
			return
		}
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			if _, err := wire.ParseHello(bytes.TrimRight(line[:i], "\r")); err == nil {
				conn.Write(wire.AppendOK(nil, 0))
				answered.Add(1)
			}
			line = nil
		}
	}
}

// BenchmarkIdleConns reports the server memory per idle TLS connection: live
// heap after GC plus goroutine stacks, divided by the connections. Run it with
// -benchtime=1x; INLET_IDLE_CONNS overrides the 10,000 connections.
func BenchmarkIdleConns(b *testing.B) {
	for _, v := range []struct {
		name    string
		version uint16
	}{{"TLS1.2", tls.VersionTLS12}, {"TLS1.3", tls.VersionTLS13}} {
		b.Run(v.name, func(b *testing.B) { benchIdle(b, v.version) })
	}
}

func benchIdle(b *testing.B, version uint16) {
	n := 10000
	if s := os.Getenv("INLET_IDLE_CONNS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	_, _, ss := testCert(b, b.TempDir(), 0)
	ts, err := tlsserve.New(mustPair(b, ss))
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		var answered atomic.Int64
		var wg sync.WaitGroup
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() { defer wg.Done(); serveIdle(ts, c, &answered) }()
			}
		}()
		before := memNow()
		goroutinesBefore := runtime.NumGoroutine()

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", idleEnv, ln.Addr(), n, version))
		stdin, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		ready, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || ready != "ready 0 failed\n" {
			b.Fatalf("clients: %q, %v", ready, err)
		}
		if got := answered.Load(); got != int64(n) {
			b.Fatalf("%d of %d answered", got, n)
		}
		after := memNow()
		if f := os.Getenv("INLET_IDLE_HEAPPROFILE"); f != "" {
			writeHeapProfile(b, f)
		}
		goroutines := runtime.NumGoroutine() - goroutinesBefore
		heap := float64(after.heap-before.heap) / float64(n)
		stack := float64(after.stack-before.stack) / float64(n)
		b.ReportMetric((heap+stack)/1024, "KB/conn")
		b.ReportMetric(heap/1024, "heap-KB/conn")
		b.ReportMetric(stack/1024, "stack-KB/conn")
		b.ReportMetric(float64(goroutines)/float64(n), "goroutines/conn")

		stdin.Close()
		cmd.Wait()
		ln.Close()
		wg.Wait()
	}
}

// writeHeapProfile writes the live heap with all connections idle, to see
// what an idle connection holds (go tool pprof -sample_index=inuse_space).
func writeHeapProfile(b *testing.B, name string) {
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

type mem struct{ heap, stack uint64 }

// memNow collects garbage until the stacks stop shrinking (each GC halves a
// stack at most once, and only if three quarters of it are unused), as a
// server that idles for a few GC cycles would.
func memNow() mem {
	for range 6 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{ms.HeapAlloc, ms.StackInuse}
}
