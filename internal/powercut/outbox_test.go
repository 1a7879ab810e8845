package powercut

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet/client"
)

const outboxDevice = "outbox-dev"

// outboxPad makes the log grow fast enough to be compacted (rewritten to a
// temporary file and renamed over) between cuts.
var outboxPad = strings.Repeat("x", 2000)

func outboxPayload(g, i int) string { return fmt.Sprintf("g=%d i=%d %s", g, i, outboxPad) }

// TestClientOutboxPowerCut: the Go client's outbox on the power-cut
// filesystem. A device process sends as fast as it can and prints every seq
// Send returned for; it is SIGKILLed and the power cut at a random moment,
// over and over, with the server reachable (acks, compactions) in some runs
// and not in others. At the end a Sender on the same outbox must deliver
// every reading any Send returned for, each exactly once.
func TestClientOutboxPowerCut(t *testing.T) {
	m := mountFS(t)
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d", s)
	rng := rand.New(rand.NewPCG(s, 0x6f7574626f78))
	bin := buildInlet(t)
	tcp, _ := freePorts(t)
	dead, _ := freePorts(t) // nothing listens there
	db := filepath.Join(t.TempDir(), "inlet.db")
	srv := startInlet(t, bin, "--tcp", tcp, "--udp", "", "--http", "", "--db", db)
	outbox := filepath.Join(m.dir, "outbox")

	returned := map[string]string{} // boot/seq -> payload of every Send that returned
	var names, back, compactions int
	for cycle := 1; cycle <= 8; cycle++ {
		addr := tcp
		if cycle%3 == 0 {
			addr = dead
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxDeviceProcess$")
		cmd.Env = append(os.Environ(), "POWERCUT_OUTBOX="+outbox, "POWERCUT_ADDR="+addr)
		stderr := &lockedBuffer{}
		cmd.Stderr = stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Let it send for a while (at least some Sends returned), then cut.
		until := time.After(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		n := 0
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("cycle %d: the device process ended:\n%s", cycle, stderr)
				}
				record(t, returned, line)
				n++
			case <-until:
				if n > 0 {
					break read
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("cycle %d: no Send returned in 30s", cycle)
			}
		}
		cmd.Process.Kill()
		for line := range lines { // what it printed before it died
			record(t, returned, line)
			n++
		}
		cmd.Wait()
		if err := m.fs.Unmount(); err != nil {
			t.Fatal(err)
		}
		rep, err := m.fs.Cut(CutOptions{Tear: rng.IntN(2) == 0, Rand: rng})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.fs.Mount(m.dir); err != nil {
			t.Fatal(err)
		}
		compactions += strings.Count(stderr.String(), "outbox: compacted")
		names += len(rep.Lost)
		back += len(rep.Back)
		t.Logf("cycle %d (%s): %d Sends returned; cut dropped %s %v", cycle, addr, n, rep, rep.PerFile)
	}

	// A Sender on the same outbox delivers what the cuts left.
	sender, err := client.New(client.Config{Addr: tcp, Device: outboxDevice, Outbox: outbox,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sender.Flush(ctx); err != nil {
		t.Fatalf("flush: %v (%+v)", err, sender.Stats())
	}
	if err := sender.Close(); err != nil {
		t.Fatal(err)
	}
	srv.kill()

	sdb, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	rows, err := sdb.Query("SELECT boot, seq, CAST(payload AS TEXT) FROM messages WHERE device = ?", outboxDevice)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for rows.Next() {
		var boot, payload string
		var seq int64
		if err := rows.Scan(&boot, &seq, &payload); err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("%s/%d", boot, seq)
		stored[key]++
		if want, ok := returned[key]; ok && payload != want {
			t.Errorf("%s: payload %.20q…, want %.20q…", key, payload, want)
		}
	}
	rows.Close()
	lost := 0
	for key := range returned {
		switch stored[key] {
		case 1:
		case 0:
			lost++
			if lost <= 10 {
				t.Errorf("%s: Send returned, never delivered", key)
			}
		default:
			t.Errorf("%s: stored %d times", key, stored[key])
		}
	}
	t.Logf("%d Sends returned over 8 cuts (%d names lost, %d back, %d compactions completed); %d stored, %d lost", len(returned), names, back, compactions, len(stored), lost)
	if compactions == 0 {
		t.Errorf("the outbox log was never compacted: the rename path was not exercised")
	}
	if lost > 0 {
		t.Fatalf("%d readings Send returned for were lost", lost)
	}
}

func record(t *testing.T, returned map[string]string, line string) {
	t.Helper()
	var boot string
	var seq int64
	var g, i int
	if _, err := fmt.Sscanf(line, "sent %s %d %d %d", &boot, &seq, &g, &i); err != nil {
		t.Fatalf("device process printed %q: %v", line, err)
	}
	returned[boot+"/"+strconv.FormatInt(seq, 10)] = outboxPayload(g, i)
}

// TestOutboxDeviceProcess is the device of TestClientOutboxPowerCut, run as a
// process of its own so it can be killed: four goroutines send (sharing
// fsyncs) until it is, printing each seq Send returned for.
func TestOutboxDeviceProcess(t *testing.T) {
	dir := os.Getenv("POWERCUT_OUTBOX")
	if dir == "" {
		t.Skip("run by TestClientOutboxPowerCut")
	}
	s, err := client.New(client.Config{Addr: os.Getenv("POWERCUT_ADDR"), Device: outboxDevice, Outbox: dir,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "outbox device:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for g := range 4 {
		go func() {
			for i := 1; ; i++ {
				seq, err := s.Send([]byte(outboxPayload(g, i)))
				if err != nil {
					fmt.Fprintln(os.Stderr, "outbox device: send:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Printf("sent %s %d %d %d\n", s.Boot(), seq, g, i)
				mu.Unlock()
			}
		}()
	}
	select {}
}
