package postgres_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/internal/pgtest"
	"github.com/inletdev/inlet/postgres"
	"github.com/jackc/pgx/v5"
)

const benchBatch, benchDevices = 8192, 500

// benchMessages is one batch of plain stream traffic: benchDevices devices
// counting up, with derived fields, as the writer hands them over.
func benchMessages(node, round int) []inlet.Message {
	msgs := make([]inlet.Message, benchBatch)
	remote := netip.MustParseAddrPort("10.1.2.3:40000")
	for i := range msgs {
		v := round*benchBatch/benchDevices + i/benchDevices + 1
		p := []byte(fmt.Sprint(v))
		msgs[i] = inlet.Message{ReceivedAt: time.Now().UnixNano(), Device: fmt.Sprintf("10.%d.%d.%d", node, i%benchDevices/250, i%250),
			Transport: inlet.TCP, Remote: remote, Payload: p, Fields: []byte(`{"value":` + string(p) + `}`), Counter: int64(v), IsCounter: true}
	}
	return msgs
}

func newLedger() *inlet.Ledger {
	return &inlet.Ledger{Devices: map[string]*inlet.Device{}, Boots: map[inlet.BootKey]*inlet.Boot{}}
}

// BenchmarkCommit: batches of 8,192 plain messages from 500 devices committed
// with their accounting (CommitAccounted), rows COPYed or inserted from
// unnest arrays; and the practical limit, the same rows COPYed in one
// transaction a batch without anything else.
func BenchmarkCommit(b *testing.B) {
	for _, mode := range []struct {
		name   string
		insert postgres.InsertMode
	}{{"copy", postgres.InsertCopy}, {"unnest", postgres.InsertUnnest}} {
		b.Run(mode.name, func(b *testing.B) {
			s, err := postgres.Open(context.Background(), pgtest.URL(b), postgres.Options{Insert: mode.insert})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			l := newLedger()
			round := 0
			for b.Loop() {
				if _, _, err := s.CommitAccounted(context.Background(), l, benchMessages(0, round)); err != nil {
					b.Fatal(err)
				}
				round++
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
	b.Run("copy-only", func(b *testing.B) {
		ctx := context.Background()
		url := pgtest.URL(b)
		s, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		round := 0
		for b.Loop() {
			msgs := benchMessages(0, round)
			rows := make([][]any, len(msgs))
			for i := range msgs {
				m := &msgs[i]
				f := string(m.Fields)
				rows[i] = []any{m.ReceivedAt, m.Device, "tcp", m.Remote.String(), m.Payload, &f}
			}
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				_, err := tx.CopyFrom(ctx, pgx.Identifier{"messages"}, []string{"received_at", "device", "transport", "remote", "payload", "fields"},
					pgx.CopyFromRows(rows))
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			round++
		}
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// BenchmarkPsqlCopy is the practical limit: the same rows loaded by
// psql's \copy, one COPY (one transaction) of 8,192 rows a run of psql.
func BenchmarkPsqlCopy(b *testing.B) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		b.Skip("no psql")
	}
	ctx := context.Background()
	url := pgtest.URL(b)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	dir := b.TempDir()
	files := make([]string, 8)
	for r := range files {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		for _, m := range benchMessages(0, r) {
			w.Write([]string{fmt.Sprint(m.ReceivedAt), m.Device, "tcp", m.Remote.String(), `\x` + hex.EncodeToString(m.Payload), string(m.Fields)})
		}
		w.Flush()
		files[r] = filepath.Join(dir, fmt.Sprintf("%d.csv", r))
		if err := os.WriteFile(files[r], buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	round := 0
	for b.Loop() {
		out, err := exec.Command(psql, url, "-q", "-v", "ON_ERROR_STOP=1", "-c",
			`\copy messages (received_at, device, transport, remote, payload, fields) from '`+files[round%len(files)]+`' csv`).CombinedOutput()
		if err != nil {
			b.Fatalf("psql: %v: %s", err, out)
		}
		round++
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkNodes: one node, then two nodes committing at once on one database,
// each with devices of its own (a balancer spreading devices) or the same
// devices (every batch contends for every device's lock).
func BenchmarkNodes(b *testing.B) {
	for _, c := range []struct {
		name   string
		nodes  int
		shared bool
	}{{"one", 1, false}, {"two-own-devices", 2, false}, {"two-same-devices", 2, true}} {
		b.Run(c.name, func(b *testing.B) {
			url := pgtest.URL(b)
			stores := make([]*postgres.Store, c.nodes)
			for i := range stores {
				s, err := postgres.Open(context.Background(), url, postgres.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				stores[i] = s
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			for n, s := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l := newLedger()
					dev := n
					if c.shared {
						dev = 0
					}
					for round := range b.N {
						if _, _, err := s.CommitAccounted(context.Background(), l, benchMessages(dev, round*c.nodes+n)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(c.nodes*b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
