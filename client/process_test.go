package client_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet/client"
	"github.com/inletdev/inlet/internal/fakeinlet"
)

// The child process of TestKilledSenderLosesNothing: it sends from 4 goroutines
// into the outbox as fast as it can, printing each message after Send returned,
// until it is killed.
func TestHelperKilledSender(t *testing.T) {
	dir, addr := os.Getenv("INLET_CLIENT_CHILD_OUTBOX"), os.Getenv("INLET_CLIENT_CHILD_ADDR")
	if dir == "" {
		t.Skip("run by TestKilledSenderLosesNothing")
	}
	s, err := client.New(client.Config{Addr: addr, Device: "child", Outbox: dir})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "boot", s.Boot())
	out.Flush()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				p := fmt.Sprintf("g%d-%d", g, i)
				seq, err := s.Send([]byte(p))
				if err != nil {
					time.Sleep(time.Millisecond) // outbox full: the server is slower
					continue
				}
				mu.Lock()
				fmt.Fprintln(out, "sent", p, seq)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// A sender killed with SIGKILL in the middle of sending loses nothing: a new
// Sender on its outbox delivers every message whose Send had returned, under its
// original boot and seq, and nothing is stored twice.
func TestKilledSenderLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	// While the child runs, acknowledge in batches of 50, so that at the kill
	// many messages are sent and not acknowledged, and more are not sent yet.
	var killed atomic.Bool
	srv := startFake(t, fakeinlet.Options{
		AckWhen: func(_ fakeinlet.Msg, unacked int, _ bool) bool { return unacked >= 50 || killed.Load() },
	})
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperKilledSender$")
	cmd.Env = append(os.Environ(), "INLET_CLIENT_CHILD_OUTBOX="+dir, "INLET_CLIENT_CHILD_ADDR="+srv.TCPAddr())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var boot string
	returned := map[string]int64{} // payload → seq, for every Send that returned
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "boot":
			boot = f[1]
		case len(f) == 3 && f[0] == "sent":
			seq, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				t.Fatalf("child said %q", sc.Text())
			}
			returned[f[1]] = seq
		default:
			t.Fatalf("child said %q", sc.Text())
		}
		// Kill it once it is well under way, while sends and acks are in flight.
		if len(returned) == 2000 {
			cmd.Process.Kill()
			killed.Store(true)
		}
	}
	cmd.Wait()
	if boot == "" || len(returned) < 2000 {
		t.Fatalf("child ended early: boot %q, %d messages", boot, len(returned))
	}
	storedBefore := len(srv.Stored())

	s := newSender(t, client.Config{Addr: srv.TCPAddr(), Device: "child", Outbox: dir})
	mustFlush(t, s)
	t.Logf("child: %d sends returned, %d stored before the kill; restart: %d reloaded",
		len(returned), storedBefore, s.Stats().Loaded)

	byPayload := map[string]int64{}
	for _, m := range srv.Stored() {
		if m.Device != "child" || m.Boot != boot {
			t.Errorf("stored %s/%s seq %d: not the child's boot %s", m.Device, m.Boot, m.Seq, boot)
		}
		if prev, dup := byPayload[string(m.Payload)]; dup {
			t.Errorf("payload %s stored twice, as seq %d and %d", m.Payload, prev, m.Seq)
		}
		byPayload[string(m.Payload)] = m.Seq
	}
	for p, seq := range returned {
		got, ok := byPayload[p]
		if !ok {
			t.Errorf("payload %s (seq %d) was accepted by Send and never stored", p, seq)
		} else if got != seq {
			t.Errorf("payload %s stored as seq %d, Send returned %d", p, got, seq)
		}
	}
	if st := s.Stats(); st.Pending != 0 {
		t.Errorf("still pending: %+v", st)
	}
}
