package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/client"
)

// freeTCPAddr finds a loopback port to restart the server on after each kill.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The crash test: 20 acknowledged senders with durable outboxes send 2,000
// messages each while the server is killed with SIGKILL and restarted at random
// moments. At the end the store holds every message exactly once, and after
// every kill, every message a client had seen acknowledged was already stored.
func TestCrashAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	const senders, perSender, kills = 20, 2000, 6
	db := filepath.Join(t.TempDir(), "inlet.db")
	addr := freeTCPAddr(t)
	args := []string{"--tcp", addr, "--udp", "", "--http", "", "--db", db}
	srv := startBinary(t, args...)

	var clients []*client.Sender
	for i := range senders {
		c, err := client.New(client.Config{
			Addr: addr, Device: fmt.Sprintf("crash-%02d", i), Outbox: t.TempDir(),
			Window: 64, MinBackoff: 10 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
			AckTimeout: 2 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	var senderWG sync.WaitGroup
	sendErrs := make(chan error, senders)
	for i, c := range clients {
		senderWG.Go(func() {
			// Four goroutines per sender share the outbox's fsyncs.
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for k := g; k < perSender; k += 4 {
						if _, err := c.Send(fmt.Appendf(nil, "d=%02d k=%d", i, k)); err != nil {
							sendErrs <- fmt.Errorf("sender %d: %w", i, err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}

	// Kill and restart the server at random moments while the senders work.
	for k := range kills {
		time.Sleep(time.Duration(150+rand.IntN(450)) * time.Millisecond)
		srv.cmd.Process.Signal(syscall.SIGKILL)
		<-srv.exited
		srv.exited <- nil
		// The server is dead: whatever a client has seen acknowledged must be on disk.
		acked := make([]int64, senders)
		for i, c := range clients {
			acked[i] = c.Stats().Acked
		}
		checkAckedStored(t, db, acked, k)
		srv = startBinary(t, args...)
	}
	senderWG.Wait()
	close(sendErrs)
	for err := range sendErrs {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, c := range clients {
		if err := c.Flush(ctx); err != nil {
			t.Fatalf("sender %d: flush: %v (%+v)", i, err, c.Stats())
		}
	}
	srv.stop(t, syscall.SIGTERM)

	// Every message exactly once.
	got := make(map[string]int)
	for _, m := range messages(t, db, inlet.Query{}) {
		got[string(m.Payload)]++
	}
	var missing, doubled int
	for i := range senders {
		for k := range perSender {
			switch got[fmt.Sprintf("d=%02d k=%d", i, k)] {
			case 0:
				missing++
			case 1:
			default:
				doubled++
			}
		}
	}
	if missing != 0 || doubled != 0 || len(got) != senders*perSender {
		t.Fatalf("%d missing, %d stored twice, %d distinct rows; want %d each once", missing, doubled, len(got), senders*perSender)
	}
	var retried int64
	for _, c := range clients {
		retried += c.Stats().Retried
	}
	t.Logf("%d messages stored exactly once across %d SIGKILLs; %d resends", senders*perSender, kills, retried)
}

// checkAckedStored checks, with the server dead, that each sender's acknowledged
// messages (a prefix of its sequence: acks are cumulative and in order) are stored.
func checkAckedStored(t *testing.T, db string, acked []int64, kill int) {
	t.Helper()
	seqs := make(map[string][]int64)
	for _, m := range messages(t, db, inlet.Query{}) {
		seqs[m.Device] = append(seqs[m.Device], m.Seq)
	}
	for i, n := range acked {
		dev := fmt.Sprintf("crash-%02d", i)
		have := make(map[int64]bool, len(seqs[dev]))
		for _, s := range seqs[dev] {
			have[s] = true
		}
		for s := int64(1); s <= n; s++ {
			if !have[s] {
				t.Fatalf("kill %d: %s had %d messages acknowledged, but seq %d is not stored", kill, dev, n, s)
			}
		}
	}
}
