package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

// Under a retention policy the database file levels off: simulated
// traffic (five days, an hour's batch at a time, 1 day kept, pruned every hour) grows the
// file during the first day and then reuses the pages the prunes free.
func TestRetentionLevelsOff(t *testing.T) {
	ctx := context.Background()
	s, path := MustOpen(t)
	const hour = int64(3600e9)
	const perHour = 60
	remote := netip.MustParseAddrPort("192.0.2.1:4000")
	payload := []byte(fmt.Sprintf("t=%.1f h=%d note=%070d", 21.5, 40, 0)) // about 100 bytes
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	size := func(suffix string) int64 {
		if suffix == "-wal" {
			fi, err := os.Stat(path + suffix)
			if err != nil {
				return 0
			}
			return fi.Size()
		}
		// The database's own size, whether its newest pages are in the WAL yet
		// or already checkpointed into the file.
		var pages, pageSize int64
		if err := db.QueryRow("SELECT (SELECT page_count FROM pragma_page_count), (SELECT page_size FROM pragma_page_size)").Scan(&pages, &pageSize); err != nil {
			t.Fatal(err)
		}
		return pages * pageSize
	}
	var sizes, wals []int64 // at the end of each day
	for h := int64(0); h < 5*24; h++ {
		b := &inlet.Batch{}
		for i := range perHour {
			b.Messages = append(b.Messages, inlet.Message{ReceivedAt: h*hour + int64(i), Device: fmt.Sprintf("dev-%d", i%20),
				Transport: inlet.TCP, Remote: remote, Payload: payload, Fields: []byte(`{"t":21.5,"h":40}`)})
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Prune(ctx, (h+1)*hour-24*hour, sqlite.PruneOptions{BatchRows: 1000, Pause: 1}); err != nil {
			t.Fatal(err)
		}
		// The rollups are kept forever by default; under a policy for them too
		// (serve --retain-rollups) the file levels off.
		if _, err := s.PruneRollups(ctx, (h+1)*hour-24*hour); err != nil {
			t.Fatal(err)
		}
		if h%24 == 23 {
			sizes, wals = append(sizes, size("")), append(wals, size("-wal"))
		}
	}
	t.Logf("database size at the end of each day: %v bytes; its WAL file: %v", sizes, wals)
	if sizes[4] > sizes[1]+sizes[1]/5 {
		t.Fatalf("the file keeps growing under retention: %d bytes after day 2, %d after day 5", sizes[1], sizes[4])
	}
	// The WAL is bounded by SQLite's automatic checkpoint (1000 pages), not by
	// the traffic.
	if wals[4] > 5<<20 {
		t.Fatalf("the WAL grew to %d bytes", wals[4])
	}
}
