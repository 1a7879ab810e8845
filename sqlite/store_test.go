package sqlite_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

// MustOpen opens a fresh database in a temp dir, closed when the test ends.
func MustOpen(tb testing.TB) (*sqlite.Store, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "inlet.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, path
}

func batch(start, n, devices int, at int64) *inlet.Batch {
	b := &inlet.Batch{}
	remote := netip.MustParseAddrPort("127.0.0.1:40000")
	for i := range n {
		k := start + i
		p := []byte(fmt.Sprint(k))
		b.Messages = append(b.Messages, inlet.Message{
			ReceivedAt: at, Device: fmt.Sprintf("127.0.0.%d", k%devices), Transport: inlet.TCP,
			Remote: remote, Payload: p, Fields: []byte(`{"value":` + string(p) + `}`),
		})
	}
	return b
}

func TestCommitAndReadBack(t *testing.T) {
	s, path := MustOpen(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC).UnixNano()
	for i := range 10 {
		b := batch(i*100, 100, 4, base+int64(i)*int64(time.Second))
		b.Devices = []inlet.Device{{ID: "127.0.0.1", Messages: int64(i + 1), FirstSeen: base, LastSeen: base, Gaps: 2, Missing: 3,
			Run: inlet.CounterRun{Active: true, Low: 1, High: 99, Seen: 5}}}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	var last int64
	if err := s.Messages(ctx, inlet.Query{}, func(m *inlet.Stored) error {
		n++
		if m.ID <= last {
			t.Fatalf("ids out of order: %d after %d", m.ID, last)
		}
		last = m.ID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1000 {
		t.Fatalf("read %d rows, want 1000", n)
	}
	// Time bounds: seconds 3..5 hold batches 3 and 4.
	var got []string
	s.Messages(ctx, inlet.Query{Since: base + 3*int64(time.Second), Until: base + 5*int64(time.Second), Device: "127.0.0.2"},
		func(m *inlet.Stored) error { got = append(got, string(m.Payload)); return nil })
	if len(got) != 50 || got[0] != "302" || got[49] != "498" {
		t.Fatalf("time+device filter: %d rows %v", len(got), got)
	}
	// Paging by id and a limit.
	var page []int64
	s.Messages(ctx, inlet.Query{AfterID: 990, Limit: 5}, func(m *inlet.Stored) error { page = append(page, m.ID); return nil })
	if len(page) != 5 || page[0] != 991 {
		t.Fatalf("page %v", page)
	}
	ds, err := s.Devices(ctx)
	if err != nil || len(ds) != 1 || ds[0].Messages != 10 || ds[0].Gaps != 2 || ds[0].Run.High != 99 || ds[0].Run.Seen != 5 {
		t.Fatalf("devices %+v %v", ds, err)
	}
	// A reader opened read-only sees the same while the writer is open.
	ro, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	n = 0
	ro.Messages(ctx, inlet.Query{Since: base + 9*int64(time.Second)}, func(*inlet.Stored) error { n++; return nil })
	if n != 100 {
		t.Fatalf("read-only since: %d rows, want 100", n)
	}
}

func TestSeqIsUnique(t *testing.T) {
	s, _ := MustOpen(t)
	ctx := context.Background()
	b := batch(1, 1, 1, 1)
	b.Messages[0].Boot, b.Messages[0].Seq = "a1", 7
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	// A resend that reaches the store anyway (another node, say) is dropped by the
	// unique key, not stored twice and not an error.
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, batch(2, 3, 1, 2)); err != nil {
		t.Fatal(err)
	}
	var n int
	s.Messages(ctx, inlet.Query{}, func(*inlet.Stored) error { n++; return nil })
	if n != 4 {
		t.Fatalf("%d rows, want 4", n)
	}
}

func TestBootsRoundTrip(t *testing.T) {
	s, _ := MustOpen(t)
	ctx := context.Background()
	b := batch(1, 1, 1, 5)
	b.Messages[0].Boot, b.Messages[0].Seq = "b1", 9
	b.Boots = []inlet.Boot{{Device: "127.0.0.0", Boot: "b1", Last: 9, Missing: []inlet.SeqRange{{From: 1, To: 2}, {From: 5, To: 7}},
		Messages: 4, FirstSeen: 3, LastSeen: 5}}
	b.Devices = []inlet.Device{{ID: "127.0.0.0", Messages: 4, LastBoot: "b1"}}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	bs, err := s.Boots(ctx)
	if err != nil || len(bs) != 1 {
		t.Fatalf("boots %v %v", bs, err)
	}
	got := bs[0]
	if got.Last != 9 || len(got.Missing) != 2 || got.Missing[1] != (inlet.SeqRange{From: 5, To: 7}) || got.Messages != 4 || got.Durable() != 0 {
		t.Fatalf("boot %+v", got)
	}
	ds, _ := s.Devices(ctx)
	if len(ds) != 1 || ds[0].LastBoot != "b1" {
		t.Fatalf("devices %+v", ds)
	}
}

func TestOpenRejectsForeignDatabase(t *testing.T) {
	_, path := MustOpen(t)
	if _, err := sqlite.Open(context.Background(), filepath.Join(filepath.Dir(path), "missing.db"), sqlite.Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only open of a missing database succeeded")
	}
}

// BenchmarkCommit measures one batch commit of n small rows (the counter line of
// the tutorial) spread over d devices, with their device state, synced to disk:
// 100 rows from 32 devices is connect-per-message traffic, 8192 rows from 8 is
// persistent streams.
func BenchmarkCommit(b *testing.B) {
	for _, c := range []struct{ n, devices int }{{100, 32}, {1000, 32}, {8192, 8}} {
		b.Run(fmt.Sprintf("rows=%d/devices=%d", c.n, c.devices), func(b *testing.B) {
			s, _ := MustOpen(b)
			ctx := context.Background()
			bt := batch(0, c.n, c.devices, time.Now().UnixNano())
			for d := range c.devices {
				bt.Devices = append(bt.Devices, inlet.Device{ID: fmt.Sprintf("127.0.0.%d", d), Messages: 1,
					Run: inlet.CounterRun{Active: true, Low: 1, High: 1, Seen: 1}})
			}
			n := c.n
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Commit(ctx, bt); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			// Wall time is mostly fsync; CPU per row is what competes with the listeners.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n*b.N), "cpu-µs/row")
		})
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
