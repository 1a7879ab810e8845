package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"
)

// The proxy hands connections to its backends in turn and carries bytes both
// ways; a device's half close reaches the backend, whose answer still comes back.
func TestProxyRoundRobin(t *testing.T) {
	var backends []string
	for i := range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		backends = append(backends, ln.Addr().String())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					b, _ := io.ReadAll(c) // until the device's half close
					fmt.Fprintf(c, "backend %d: %s\n", i, b)
				}()
			}
		}()
	}
	p, err := startProxy(backends)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	for i := range 4 {
		c, err := net.Dial("tcp", p.addr())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "conn %d", i)
		c.(*net.TCPConn).CloseWrite()
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if want := fmt.Sprintf("backend %d: conn %d\n", i%2, i); err != nil || line != want {
			t.Errorf("connection %d: read %q, %v; want %q", i, line, err, want)
		}
	}
}
