package sqlite_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

// BenchmarkRead measures the read paths on a database of 500 devices: 200,000
// rows committed in large batches, then 10,000 in batches of 25 (as a fleet's
// trickle leaves the newest rows): one device's newest 100 rows (the dashboard,
// /api/messages?device=…&limit=100), a page of 1,000 rows after an id (the
// stream, exports), and every row (export). Only the Store's public methods,
// so that it runs on any layout.
func BenchmarkRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "inlet.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	remote := netip.MustParseAddrPort("127.0.0.1:40000")
	n := 0
	commit := func(rows int) {
		bt := &inlet.Batch{}
		now := time.Now().UnixNano()
		for range rows {
			p := []byte(fmt.Sprint(n))
			bt.Messages = append(bt.Messages, inlet.Message{ReceivedAt: now, Device: fmt.Sprintf("dev-%d", n%500), Transport: inlet.TCP,
				Remote: remote, Payload: p, Fields: []byte(`{"value":` + string(p) + `}`)})
			n++
		}
		if err := s.Commit(ctx, bt); err != nil {
			b.Fatal(err)
		}
	}
	for range 200_000 / 20_000 {
		commit(20_000)
	}
	for range 10_000 / 25 {
		commit(25)
	}
	count := func(q inlet.Query) int {
		k := 0
		if err := s.Messages(ctx, q, func(*inlet.Stored) error { k++; return nil }); err != nil {
			b.Fatal(err)
		}
		return k
	}
	b.Run("device-newest-100", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if k := count(inlet.Query{Device: fmt.Sprintf("dev-%d", i%500), Limit: 100, Last: true}); k != 100 {
				b.Fatalf("%d rows", k)
			}
		}
	})
	b.Run("page-1000", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if k := count(inlet.Query{AfterID: int64(i%200) * 1000, Limit: 1000}); k != 1000 {
				b.Fatalf("%d rows", k)
			}
		}
	})
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			if k := count(inlet.Query{}); k != 210_000 {
				b.Fatalf("%d rows", k)
			}
		}
	})
}
