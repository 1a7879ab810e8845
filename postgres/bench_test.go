package postgres_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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

// BenchmarkInterleaved measures the same things as BenchmarkCommit,
// BenchmarkPsqlCopy and BenchmarkNodes, but alternated batch by batch (or
// phase by phase, for the nodes), so that a shared machine's changing load
// falls on all of them alike: each iteration commits one batch by COPY, one by
// unnest, one bare COPY, one psql \copy, then one batch on one node and one
// batch on each of two nodes at once.
func BenchmarkInterleaved(b *testing.B) {
	ctx := context.Background()
	psql, _ := exec.LookPath("psql")
	openOn := func(url string, mode postgres.InsertMode) *postgres.Store {
		s, err := postgres.Open(ctx, url, postgres.Options{Insert: mode})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	cp, un := openOn(pgtest.URL(b), postgres.InsertCopy), openOn(pgtest.URL(b), postgres.InsertUnnest)
	rawURL := pgtest.URL(b)
	openOn(rawURL, postgres.InsertCopy)
	raw, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close(ctx)
	oneURL, twoURL := pgtest.URL(b), pgtest.URL(b)
	one := openOn(oneURL, postgres.InsertCopy)
	two := []*postgres.Store{openOn(twoURL, postgres.InsertCopy), openOn(twoURL, postgres.InsertCopy)}
	lCp, lUn, lOne := newLedger(), newLedger(), newLedger()
	lTwo := []*inlet.Ledger{newLedger(), newLedger()}
	dir := b.TempDir()
	var took [6]time.Duration
	timed := func(i int, f func() error) {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		took[i] += time.Since(start)
	}
	round := 0
	for b.Loop() {
		timed(0, func() error { _, _, err := cp.CommitAccounted(ctx, lCp, benchMessages(0, round)); return err })
		timed(1, func() error { _, _, err := un.CommitAccounted(ctx, lUn, benchMessages(0, round)); return err })
		timed(2, func() error {
			msgs := benchMessages(0, round)
			rows := make([][]any, len(msgs))
			for i := range msgs {
				m := &msgs[i]
				f := string(m.Fields)
				rows[i] = []any{m.ReceivedAt, m.Device, "tcp", m.Remote.String(), m.Payload, &f}
			}
			return pgx.BeginFunc(ctx, raw, func(tx pgx.Tx) error {
				_, err := tx.CopyFrom(ctx, pgx.Identifier{"messages"}, []string{"received_at", "device", "transport", "remote", "payload", "fields"},
					pgx.CopyFromRows(rows))
				return err
			})
		})
		if psql != "" {
			var buf bytes.Buffer
			w := csv.NewWriter(&buf)
			for _, m := range benchMessages(0, round) {
				w.Write([]string{fmt.Sprint(m.ReceivedAt), m.Device, "tcp", m.Remote.String(), `\x` + hex.EncodeToString(m.Payload), string(m.Fields)})
			}
			w.Flush()
			file := filepath.Join(dir, "batch.csv")
			if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
				b.Fatal(err)
			}
			timed(3, func() error {
				out, err := exec.Command(psql, rawURL, "-q", "-v", "ON_ERROR_STOP=1", "-c",
					`\copy messages (received_at, device, transport, remote, payload, fields) from '`+file+`' csv`).CombinedOutput()
				if err != nil {
					return fmt.Errorf("psql: %v: %s", err, out)
				}
				return nil
			})
		}
		timed(4, func() error { _, _, err := one.CommitAccounted(ctx, lOne, benchMessages(0, round)); return err })
		timed(5, func() error {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for n, s := range two {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _, errs[n] = s.CommitAccounted(ctx, lTwo[n], benchMessages(n+1, round))
				}()
			}
			wg.Wait()
			return errors.Join(errs...)
		})
		round++
	}
	rate := func(i, batches int) float64 { return float64(batches*benchBatch) / took[i].Seconds() }
	b.ReportMetric(rate(0, b.N), "copy-msgs/s")
	b.ReportMetric(rate(1, b.N), "unnest-msgs/s")
	b.ReportMetric(rate(2, b.N), "bare-copy-msgs/s")
	if psql != "" {
		b.ReportMetric(rate(3, b.N), "psql-copy-msgs/s")
	}
	b.ReportMetric(rate(4, b.N), "one-node-msgs/s")
	b.ReportMetric(rate(5, 2*b.N), "two-nodes-msgs/s")
	b.ReportMetric(0, "ns/op")
}
