package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/client"
)

// The limits' flags reach the listeners of the real binary, and their
// refusals show in /metrics and the log: --max-conn-rate closes an address's
// connections past its burst while another address is served, and
// --line-timeout closes a connection that trickles a line.
func TestServeLimits(t *testing.T) {
	db := filepath.Join(t.TempDir(), "limits.db")
	s := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db,
		"--max-conn-rate", "0.1", "--max-conn-burst", "2", "--line-timeout", "300ms")
	for i := range 5 {
		if err := sendOnce("127.0.0.4", s.ready.TCP, fmt.Sprintf("burst-%d\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sendOnce("127.0.0.5", s.ready.TCP, "other\n"); err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.6")}}
	c, err := d.Dial("tcp", s.ready.TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		for range 200 { // 10 s at most
			if _, err := c.Write([]byte{'x'}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("a connection trickling a line: %v, want closed by --line-timeout", err)
	}
	waitFor(t, "the refusals and the stored lines in /metrics", 10*time.Second, func() bool {
		body := metricsText(t, s.ready.HTTP)
		return strings.Contains(body, `inlet_connections_closed_total{reason="rate_limited"} 3`+"\n") &&
			strings.Contains(body, `inlet_connections_closed_total{reason="line_timeout"} 1`+"\n") &&
			strings.Contains(body, `inlet_rejected_total{reason="rate_limited"} 0`+"\n") &&
			strings.Contains(body, `inlet_messages_committed_total 3`+"\n")
	})
	s.stop(t, syscall.SIGTERM)
	got := payloads(messages(t, db, inlet.Query{}))
	if strings.Join(got, ",") != "burst-0,burst-1,other" {
		t.Errorf("stored %q, want the burst of 2 and the other address's line", got)
	}
	for _, want := range []string{"tcp: connection over --max-conn-rate closed", "tcp: connection closed by a limit"} {
		if !strings.Contains(s.stderr.String(), want) {
			t.Errorf("not logged: %q", want)
		}
	}
}

// --max-msg-rate loses nothing of an acknowledged device: the Go client sends
// 60 messages at once to a server allowing 10 at once and 20 a second; past the
// limit the server acknowledges what it took and closes, answers the next
// hellos busy, and the client resends until every message is stored, once.
func TestServeMsgRateLosesNothing(t *testing.T) {
	db := filepath.Join(t.TempDir(), "msgrate.db")
	s := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db,
		"--max-msg-rate", "20", "--max-msg-burst", "10")
	c, err := client.New(client.Config{Addr: s.ready.TCP, Device: "limited-1", MaxBackoff: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 60
	for i := range n {
		if _, err := c.Send(fmt.Appendf(nil, "v=%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("not every message acknowledged: %v (%+v)", err, c.Stats())
	}
	st := c.Stats()
	if st.Acked != n || st.Errors != 0 {
		t.Errorf("client: %+v, want %d acknowledged and no errors", st, n)
	}
	body := metricsText(t, s.ready.HTTP)
	if strings.Contains(body, `inlet_rejected_total{reason="rate_limited"} 0`+"\n") || !strings.Contains(body, `inlet_rejected_total{reason="rate_limited"}`) {
		t.Errorf("no rate_limited counted in /metrics")
	}
	s.stop(t, syscall.SIGTERM)
	if d := devices(t, db)["limited-1"]; d.Messages != n || d.Duplicates != 0 {
		t.Errorf("device stored %+v, want %d messages, no duplicates", d, n)
	}
}
