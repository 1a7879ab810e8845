package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet/publish"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The real binary with --publish and an embedded NATS server with JetStream:
// every message (plain and acknowledged) is in the stream once, on its
// device's subject, as the exact line `inlet export --format ndjson` writes;
// messages sent just before a SIGTERM are in it too (publish's TestCloseDrains
// shows the drain that guarantees it), and a restart resumes where the last
// run stopped.
func TestServePublishesToJetStream(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	url := ns.ClientURL()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "INLET", Subjects: []string{"inlet.msg.>"},
		Storage: jetstream.FileStorage, Duplicates: time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	db := filepath.Join(t.TempDir(), "inlet.db")
	args := []string{"--tcp", "127.0.0.1:0", "--udp", "", "--http", "127.0.0.1:0", "--db", db, "--publish", url}
	srv := startBinary(t, args...)
	for i := range 30 {
		if err := sendOnce(fmt.Sprintf("127.0.0.%d", 21+i%3), srv.ready.TCP, fmt.Sprintf("temp=%d\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	sendAcked(t, srv.ready.TCP, "esp.kitchen", "b1", 3)
	waitMetric(t, srv.ready.HTTP, "inlet_published_total", 33)
	waitMetric(t, srv.ready.HTTP, "inlet_nats_connected", 1)
	srv.stop(t, syscall.SIGTERM)

	srv = startBinary(t, args...)
	for i := range 10 {
		if err := sendOnce("127.0.0.24", srv.ready.TCP, fmt.Sprintf("%d\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	srv.stop(t, syscall.SIGTERM) // at once
	if !strings.Contains(srv.stderr.String(), "publish: publishing committed messages to NATS JetStream") ||
		!regexp.MustCompile(`from_id=33\b`).MatchString(srv.stderr.String()) {
		t.Errorf("the restart did not resume from id 33:\n%s", srv.stderr.String())
	}

	out, code := runCmd(t, "export", "--db", db, "--format", "ndjson")
	if code != 0 {
		t.Fatal("export failed")
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 43 {
		t.Fatalf("export has %d lines, want 43", len(lines))
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 43 {
		t.Fatalf("stream holds %d messages, want 43", info.State.Msgs)
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Fetch(43, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for m := range b.Messages() {
		if i >= len(lines) {
			t.Fatal("more stream messages than export lines")
		}
		var rec struct {
			ID     int64
			Device string
			Boot   *string
			Seq    *int64
		}
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil {
			t.Fatal(err)
		}
		if string(m.Data()) != lines[i] {
			t.Errorf("stream message %d: %s\nexport line: %s", i, m.Data(), lines[i])
		}
		if want := "inlet.msg." + publish.Token(rec.Device); m.Subject() != want {
			t.Errorf("message %d on %s, want %s", rec.ID, m.Subject(), want)
		}
		id := m.Headers().Get("Nats-Msg-Id")
		if rec.Seq != nil {
			if want := "a/" + publish.Token(rec.Device) + "/" + *rec.Boot + "/" + strconv.FormatInt(*rec.Seq, 10); id != want {
				t.Errorf("message %d: Nats-Msg-Id %q, want %q", rec.ID, id, want)
			}
		} else if !strings.HasPrefix(id, "p/"+publish.Token(rec.Device)+"/"+strconv.FormatInt(rec.ID, 10)+"/") {
			t.Errorf("message %d: Nats-Msg-Id %q", rec.ID, id)
		}
		i++
	}
	if b.Error() != nil || i != 43 {
		t.Fatalf("read %d stream messages: %v", i, b.Error())
	}
}

// sendAcked sends seqs 1..n in acknowledged mode on one connection and waits
// for their ACKs.
func sendAcked(t *testing.T, addr, device, boot string, n int) {
	t.Helper()
	c := dialFrom(t, "", addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "INLET/1 id=%s boot=%s\n", device, boot)
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INLET/1 OK") {
		t.Fatalf("hello: %q, %v", line, err)
	}
	for seq := 1; seq <= n; seq++ {
		fmt.Fprintf(c, "%d reading=%d\n", seq, seq)
	}
	for acked := 0; acked < n; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for ACKs: %v", err)
		}
		if strings.HasPrefix(line, "ACK ") {
			acked, _ = strconv.Atoi(strings.TrimSpace(line[4:]))
		}
	}
}

// waitMetric polls /metrics until the metric has the value.
func waitMetric(t *testing.T, addr, name string, want float64) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`)
	deadline := time.Now().Add(time.Minute)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if m := re.FindSubmatch(body); m != nil {
				last = string(m[1])
				if v, _ := strconv.ParseFloat(last, 64); v == want {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s is %q after a minute, want %v", name, last, want)
}
