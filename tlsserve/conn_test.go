package tlsserve_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/inletdev/inlet/tlsserve"
)

// pair returns a server Conn and the client's *tls.Conn on loopback.
func pair(t *testing.T) (*tlsserve.Conn, *tls.Conn) {
	t.Helper()
	_, _, ss := testCert(t, t.TempDir(), 0)
	ts, err := tlsserve.New(mustPair(t, ss))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   *tlsserve.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- res{nil, err}
			return
		}
		conn, err := ts.Handshake(context.Background(), c, 5*time.Second)
		ch <- res{conn, err}
	}()
	cl, err := tls.Dial("tcp", ln.Addr().String(), clientConfig(ss))
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { cl.Close(); r.c.Close() })
	return r.c, cl
}

// within runs f and fails the test if it has not returned after 10 s: f must
// not be waiting on the socket.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s waited on the socket", what)
	}
}

// TestWaitRead: Wait blocks while idle without a buffer; the Read after it
// returns what TLS holds without waiting for more (a one-byte record too);
// a deadline ends Wait and is not sticky.
func TestWaitRead(t *testing.T) {
	srv, cl := pair(t)
	buf := make([]byte, 1024)

	// A one-byte record: Read returns it alone, at once.
	cl.Write([]byte("a"))
	if err := srv.Wait(); err != nil {
		t.Fatal(err)
	}
	var n int
	var err error
	within(t, "Read after a one-byte record", func() { n, err = srv.Read(buf) })
	if err != nil || string(buf[:n]) != "a" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}

	// Two records back to back: everything arrives through Wait+Read.
	cl.Write([]byte("hello\n"))
	cl.Write([]byte("world\n"))
	var got []byte
	for len(got) < 12 {
		if err := srv.Wait(); err != nil {
			t.Fatal(err)
		}
		within(t, "Read after two records", func() { n, err = srv.Read(buf) })
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "hello\nworld\n" {
		t.Fatalf("got %q", got)
	}

	// A deadline ends an idle Wait, and the connection stays usable.
	srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if err := srv.Wait(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Wait past its deadline: %v", err)
	}
	srv.SetReadDeadline(time.Time{})
	cl.Write([]byte("x"))
	if err := srv.Wait(); err != nil {
		t.Fatalf("Wait after a timeout: %v", err)
	}
	if n, err := srv.Read(buf); err != nil || string(buf[:n]) != "x" {
		t.Fatalf("Read after a timeout = %q, %v", buf[:n], err)
	}

	// A deadline set from another goroutine (shutdown) ends a Wait in
	// progress; one set by the user while Read drains is kept.
	go func() {
		time.Sleep(20 * time.Millisecond)
		srv.SetReadDeadline(time.Unix(1, 0))
	}()
	if err := srv.Wait(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Wait after a past deadline: %v", err)
	}

	// Writes are cut into records: a big write arrives whole.
	srv.SetReadDeadline(time.Time{})
	big := make([]byte, 5000)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	go srv.Write(big)
	cl.SetReadDeadline(time.Now().Add(10 * time.Second))
	got = got[:0]
	for len(got) < len(big) {
		n, err := cl.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n > tlsserve.MaxRecordPlaintext {
			t.Fatalf("one read returned %d bytes: a record above %d", n, tlsserve.MaxRecordPlaintext)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != string(big) {
		t.Fatal("the big write arrived changed")
	}
}
