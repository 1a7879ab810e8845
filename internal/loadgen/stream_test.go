package loadgen

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// A stream's write that times out part way counts the lines that went out, and
// the cut-off line after them once the connection closes (the server stores
// it): a run against an overloaded server reported more messages stored than
// sent when such a flush counted none.
func TestSentLinesCountsWhatWentOut(t *testing.T) {
	var buf []byte
	for n := int64(1); n <= 20; n++ {
		buf = appendLine(buf, n) // "1\r\n2\r\n…": 3 bytes each up to 9, 4 after
	}
	for _, tc := range []struct {
		read  int   // bytes the server reads before it stops
		lines int64 // complete lines in them
		tail  bool  // and a cut-off line that is a message when the connection closes
	}{
		{0, 0, false},
		{2, 0, true},   // "1\r": the tail "1" is stored
		{3, 1, false},  // "1\r\n"
		{4, 1, true},   // "1\r\n2"
		{26, 8, true},  // up to "9" of "9\r\n"
		{27, 9, false}, // "9\r\n" ends at byte 27
		{len(buf), 20, false},
	} {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			io.ReadFull(server, make([]byte, tc.read))
		}()
		lw := &sentLines{c: client}
		client.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := lw.Write(buf)
		<-done
		if n != tc.read || (n < len(buf)) != (err != nil) {
			t.Errorf("read %d: wrote %d, %v", tc.read, n, err)
		}
		if got := lw.take(false); got != tc.lines {
			t.Errorf("read %d: %d lines before the close, want %d", tc.read, got, tc.lines)
		}
		want := int64(0)
		if tc.tail {
			want = 1
		}
		if got := lw.take(true); got != want {
			t.Errorf("read %d: %d more at the close, want %d", tc.read, got, want)
		}
		client.Close()
		server.Close()
	}
}

// Over TCP the drain waits through a pause longer than a second (a starved
// server in one long commit, its readers stopped), instead of stopping the
// server with lines unread.
func TestDrainWaitsThroughAStall(t *testing.T) {
	start := time.Now()
	const sent = 1000
	tg := &target{progress: func(context.Context) (int64, int64, error) {
		if time.Since(start) < 1500*time.Millisecond {
			return 400, 400, nil // stands still for 1.5 s
		}
		return sent, sent, nil
	}}
	if _, err := waitDrain(t.Context(), tg, sent, start, drainQuietTCP); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := tg.progress(t.Context()); n != sent {
		t.Errorf("drain ended with %d of %d stored", n, sent)
	}
}
