package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/internal/pgtest"
	"github.com/inletdev/inlet/postgres"
	"github.com/inletdev/inlet/publish"
	"github.com/inletdev/inlet/record"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The kill suite of issue 11, scaled to a shared 2-core machine: two real
// nodes (`inlet serve --db postgres://… --publish nats://…`) on one database
// behind the round-robin balancer that keeps client addresses take plain
// connect-per-message devices (each its own 127.0.0.x address) and
// acknowledged devices with durable outboxes (`inlet send --ack`), while each
// node is SIGKILLed and restarted twice at random moments and PostgreSQL is
// stopped with `-m immediate` once. Then:
//   - every acknowledged reading is stored exactly once;
//   - a plain device's stored values are a part of what it sent, each once, and
//     its accounting is the one a single node (SQLite) gives the same values in
//     the same order;
//   - an SSE consumer that moves to the other node after each kill of its node
//     (Last-Event-ID) has seen every row once, in id order;
//   - JetStream (an embedded server, a stream on inlet.msg.>) holds every row
//     once, by Nats-Msg-Id.
func TestKillSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("the kill suite takes about a minute")
	}
	url := pgtest.URL(t)

	// JetStream, in the test process.
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
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "INLET", Subjects: []string{"inlet.msg.>"},
		Storage: jetstream.FileStorage, Duplicates: time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	// Two nodes on fixed ports (a restarted node takes its ports again).
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	tcp := []string{free(), free()}
	web := []string{free(), free()}
	nodes := make([]*server, 2)
	var nodesMu sync.Mutex
	start := func(i int) {
		s := startBinary(t, "--tcp", tcp[i], "--udp", "", "--http", web[i], "--db", url,
			"--publish", ns.ClientURL())
		nodesMu.Lock()
		nodes[i] = s
		nodesMu.Unlock()
	}
	start(0)
	start(1)
	lb := startBalancer(t, tcp...)

	// The SSE consumer: starts on node 0 from id 0. Before each kill the test
	// moves it onto the node it is about to kill (a reconnect with its last
	// id); when its stream ends otherwise (its node was killed) it reconnects
	// to the other node with Last-Event-ID.
	type event struct {
		id   int64
		node int
	}
	var (
		sseMu     sync.Mutex
		events    []event
		target    int         // the node to connect to next
		connected = -1        // the node whose stream is open, -1 none
		hangUp    = func() {} // ends the open stream
		dropped   int         // streams ended by their node, not by the test
		sseDone   = make(chan struct{})
		sseStop   = make(chan struct{})
	)
	go func() {
		defer close(sseDone)
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		last := int64(0)
		for {
			select {
			case <-sseStop:
				return
			default:
			}
			sseMu.Lock()
			node := target
			reqCtx, reqCancel := context.WithCancel(ctx)
			hangUp = reqCancel
			sseMu.Unlock()
			req, _ := http.NewRequestWithContext(reqCtx, "GET", "http://"+web[node]+"/api/stream", nil)
			req.Header.Set("Last-Event-ID", strconv.FormatInt(last, 10))
			resp, err := client.Do(req)
			if err == nil && resp.StatusCode == http.StatusOK {
				sseMu.Lock()
				connected = node
				sseMu.Unlock()
				for ev := range sseEvents(resp.Body) {
					var rec struct {
						ID int64 `json:"id"`
					}
					if err := json.Unmarshal([]byte(ev[1]), &rec); err != nil || strconv.FormatInt(rec.ID, 10) != ev[0] {
						t.Errorf("stream event %v: %v", ev, err)
						continue
					}
					sseMu.Lock()
					events = append(events, event{rec.ID, node})
					sseMu.Unlock()
					last = rec.ID
				}
			}
			if resp != nil {
				resp.Body.Close()
			}
			ended := reqCtx.Err() == nil // not hung up by the test
			reqCancel()
			sseMu.Lock()
			connected = -1
			if ended && target == node {
				target = 1 - node // reconnect to the other node
				if err == nil {
					dropped++
				}
			}
			sseMu.Unlock()
			select {
			case <-sseStop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	// onNode moves the consumer to node i and waits until its stream is open.
	onNode := func(i int) {
		sseMu.Lock()
		target = i
		if connected != i {
			hangUp()
		}
		sseMu.Unlock()
		waitFor(t, fmt.Sprintf("the stream consumer on node %d", i), 30*time.Second, func() bool {
			sseMu.Lock()
			defer sseMu.Unlock()
			return connected == i
		})
	}
	// Acknowledged devices with durable outboxes.
	const ackDevs, ackCount = 20, 120
	send := exec.CommandContext(ctx, inletBinary(t), "send", "--addr", lb.addr(), "--ack", "--mode", "tutorial",
		"--device", "esp", "--devices", strconv.Itoa(ackDevs), "--count", strconv.Itoa(ackCount), "--every", "250ms",
		"--outbox", t.TempDir())
	var sendOut strings.Builder
	send.Stdout, send.Stderr = &sendOut, &sendOut
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { sent <- send.Wait() }()

	// Plain tutorial devices: connect, one line, close; counters 1..plainCount,
	// every 400-600 ms.
	const plainDevs, plainCount = 100, 60
	plainIP := func(i int) string { return fmt.Sprintf("127.0.0.%d", 100+i) }
	var plainWG sync.WaitGroup
	for i := range plainDevs {
		plainWG.Add(1)
		go func() {
			defer plainWG.Done()
			time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
			for v := 1; v <= plainCount; v++ {
				sendOnce(plainIP(i), lb.addr(), fmt.Sprintf("%d\r\n", v)) // a failed send is a lost message, as on a device
				time.Sleep(time.Duration(400+rand.IntN(200)) * time.Millisecond)
			}
		}()
	}

	// The faults, in a random order at random moments: each node killed
	// twice, PostgreSQL stopped once.
	faults := []int{0, 0, 1, 1, -1}
	kills := 0
	rand.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
	for _, f := range faults {
		time.Sleep(time.Duration(2000+rand.IntN(3500)) * time.Millisecond)
		if f < 0 {
			t.Logf("%s PostgreSQL: stop -m immediate, start", time.Now().UTC().Format("15:04:05.000"))
			pgtest.Restart(t, "immediate")
			continue
		}
		onNode(f)
		sseMu.Lock()
		before := dropped
		sseMu.Unlock()
		nodesMu.Lock()
		s := nodes[f]
		nodesMu.Unlock()
		t.Logf("%s node %d: SIGKILL", time.Now().UTC().Format("15:04:05.000"), f)
		s.cmd.Process.Kill()
		<-s.exited
		s.exited <- nil
		kills++
		// The consumer's stream ended with its node: it reconnects to the
		// other one by itself.
		waitFor(t, "the stream consumer's stream to end and reopen on the other node", 30*time.Second, func() bool {
			sseMu.Lock()
			defer sseMu.Unlock()
			return dropped > before && connected == 1-f
		})
		time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond)
		start(f)
	}
	plainWG.Wait()
	if err := <-sent; err != nil {
		t.Fatalf("inlet send: %v\n%s", err, sendOut.String())
	}

	r, err := postgres.Open(ctx, url, postgres.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rows []inlet.Stored
	readRows := func() {
		rows = rows[:0]
		err := r.Messages(ctx, inlet.Query{}, func(m *inlet.Stored) error {
			c := *m
			c.Payload = append([]byte(nil), m.Payload...)
			rows = append(rows, c)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The plain messages are stored once the nodes' queues are written: wait
	// until the count stays put.
	var n, same int
	waitFor(t, "the row count to settle", time.Minute, func() bool {
		readRows()
		if len(rows) == n {
			same++
		} else {
			n, same = len(rows), 0
		}
		time.Sleep(200 * time.Millisecond)
		return same >= 10
	})

	// 1. Every acknowledged reading stored exactly once.
	acked := make(map[string]map[int64]int)
	plain := make(map[string][]string)
	for _, m := range rows {
		if m.Seq != 0 {
			if acked[m.Device] == nil {
				acked[m.Device] = make(map[int64]int)
			}
			acked[m.Device][m.Seq]++
		} else {
			plain[m.Device] = append(plain[m.Device], string(m.Payload))
		}
	}
	if len(acked) != ackDevs {
		t.Errorf("%d acknowledged devices stored, want %d", len(acked), ackDevs)
	}
	for d, seqs := range acked {
		for seq := int64(1); seq <= ackCount; seq++ {
			if seqs[seq] != 1 {
				t.Errorf("acknowledged device %s: seq %d stored %d times", d, seq, seqs[seq])
				for _, m := range rows { // the evidence: its neighbours' rows
					if m.Device == d && m.Seq >= seq-3 && m.Seq <= seq+3 {
						t.Logf("  row id %d %s boot %s seq %d received %s", m.ID, m.Device, m.Boot, m.Seq,
							time.Unix(0, m.ReceivedAt).UTC().Format(time.RFC3339Nano))
					}
				}
				t.Logf("inlet send said:\n%s", sendOut.String())
			}
		}
		if len(seqs) != ackCount {
			t.Errorf("acknowledged device %s: %d seqs stored, want %d", d, len(seqs), ackCount)
		}
	}

	// 2. Plain devices: what is stored was sent, each value once; the
	// accounting equals a single node's for the same values in commit order.
	if len(plain) != plainDevs {
		t.Errorf("%d plain devices stored, want %d", len(plain), plainDevs)
	}
	lost := 0
	for d, vs := range plain {
		seen := make(map[string]bool)
		for _, v := range vs {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 || n > plainCount || seen[v] {
				t.Errorf("plain device %s: stored %q, which it did not send (once): %v", d, v, vs)
			}
			seen[v] = true
		}
		lost += plainCount - len(vs)
	}
	t.Logf("%d rows; plain messages lost in the kills: %d of %d", len(rows), lost, plainDevs*plainCount)
	single := filepath.Join(t.TempDir(), "single.db")
	one := startBinary(t, "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", single, "--log-level", "warn")
	stored := 0
	for d, vs := range plain {
		// One connection per device keeps its order on one node.
		stored += len(vs)
		if err := sendOnce(d, one.ready.TCP, strings.Join(vs, "\r\n")+"\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the single node to store the plain values", time.Minute, func() bool {
		n := 0
		for _, d := range devices(t, single) {
			n += int(d.Messages)
		}
		return n == stored
	})
	one.stop(t, syscall.SIGTERM)
	want := make(map[string]record.Device)
	for _, d := range devicesJSON(t, single) {
		want[d.Device] = d
	}
	lossy := 0
	for _, d := range devicesJSON(t, url) {
		vs, ok := plain[d.Device]
		if !ok {
			continue
		}
		// And against the known sent sequence: a counter from the first
		// value stored to the highest, the values never stored in between
		// missing (in that many ranges; a late arrival below the first value
		// extends the run down), no duplicate, no reset.
		have := make(map[int]bool)
		lo, hi := plainCount+1, 0
		for _, v := range vs {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			have[n] = true
			lo, hi = min(lo, n), max(hi, n)
		}
		var missing, gaps int64
		for v := lo; v <= hi; v++ {
			if !have[v] {
				missing++
				if have[v-1] {
					gaps++
				}
			}
		}
		if missing > 0 {
			lossy++
		}
		if d.Kind != "counter" || *d.Missing != missing || *d.Gaps != gaps || *d.Duplicates != 0 || *d.Resets != 0 {
			t.Errorf("plain device %s: kind %s, missing %v, gaps %v, duplicates %v, resets %v; sent 1..%d, stored %v: want missing %d in %d gaps",
				d.Device, d.Kind, ptr(d.Missing), ptr(d.Gaps), ptr(d.Duplicates), ptr(d.Resets), plainCount, vs, missing, gaps)
		}
		if !reflect.DeepEqual(d, want[d.Device]) {
			a, _ := json.Marshal(d)
			b, _ := json.Marshal(want[d.Device])
			t.Errorf("plain device %s on two nodes: %s\non one node (the same values in the same order): %s", d.Device, a, b)
		}
	}
	t.Logf("plain devices with values missing: %d", lossy)

	// 3. The SSE consumer saw every row once, in id order, across its moves.
	waitFor(t, "the stream consumer to reach the last row", time.Minute, func() bool {
		sseMu.Lock()
		defer sseMu.Unlock()
		return len(events) > 0 && events[len(events)-1].id >= rows[len(rows)-1].ID
	})
	sseMu.Lock()
	close(sseStop)
	hangUp()
	sseMu.Unlock()
	<-sseDone
	sseMu.Lock()
	evs, nDropped := append([]event(nil), events...), dropped
	sseMu.Unlock()
	perNode := [2]int{}
	for _, e := range evs {
		perNode[e.node]++
	}
	t.Logf("stream: %d events, %d streams ended by their node (%d kills; the others by PostgreSQL's restart), %d events from node 0, %d from node 1",
		len(evs), nDropped, kills, perNode[0], perNode[1])
	if perNode[0] == 0 || perNode[1] == 0 {
		t.Errorf("the stream consumer did not take events from both nodes: %v", perNode)
	}
	for i := range evs {
		if i < len(rows) && evs[i].id != rows[i].ID {
			t.Errorf("stream event %d is id %d, want %d (the %dth row)", i, evs[i].id, rows[i].ID, i)
			break
		}
	}
	if len(evs) != len(rows) {
		t.Errorf("stream delivered %d events, the database holds %d rows", len(evs), len(rows))
	}

	// 4. JetStream holds every row once, by Nats-Msg-Id.
	wantIDs := make(map[string]int64, len(rows))
	for _, m := range rows {
		if m.Seq != 0 {
			wantIDs["a/"+publish.Token(m.Device)+"/"+m.Boot+"/"+strconv.FormatInt(m.Seq, 10)] = m.ID
		} else {
			wantIDs["p/"+publish.Token(m.Device)+"/"+strconv.FormatInt(m.ID, 10)] = m.ID
		}
	}
	var info *jetstream.StreamInfo
	waitFor(t, "the stream to hold every row", time.Minute, func() bool {
		info, err = st.Info(ctx)
		return err == nil && info.State.Msgs >= uint64(len(rows))
	})
	if info.State.Msgs != uint64(len(rows)) {
		t.Errorf("the stream holds %d messages, the database %d rows", info.State.Msgs, len(rows))
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	gotIDs := make(map[string]int)
	for read := 0; read < int(info.State.Msgs); {
		b, err := c.Fetch(1000, jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range b.Messages() {
			got++
			read++
			id := m.Headers().Get("Nats-Msg-Id")
			if strings.HasPrefix(id, "p/") { // p/<device>/<id>/<received_at>
				id = id[:strings.LastIndexByte(id, '/')]
			}
			gotIDs[id]++
		}
		if b.Error() != nil || got == 0 {
			t.Fatalf("reading the stream: %d of %d messages, %v", read, info.State.Msgs, b.Error())
		}
	}
	var bad []string
	for id, n := range gotIDs {
		if _, ok := wantIDs[id]; !ok || n != 1 {
			bad = append(bad, fmt.Sprintf("%s ×%d (row: %v)", id, n, ok))
		}
	}
	for id, row := range wantIDs {
		if gotIDs[id] == 0 {
			bad = append(bad, fmt.Sprintf("row %d (%s) not in the stream", row, id))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("JetStream against the database: %d differences, first: %v", len(bad), bad[:min(len(bad), 10)])
	}
}

func ptr(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
