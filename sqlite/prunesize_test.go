package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

// PruneToSize deletes the oldest messages, and only as many as it takes to
// bring the pages in use under the target; the pages freed are reused, so
// traffic under a size bound keeps the file level.
func TestPruneToSize(t *testing.T) {
	ctx := context.Background()
	s, path := MustOpen(t)
	remote := netip.MustParseAddrPort("192.0.2.1:4000")
	pad := strings.Repeat("x", 200)
	commit := func(from, n int) {
		b := &inlet.Batch{}
		for i := from; i < from+n; i++ {
			b.Messages = append(b.Messages, inlet.Message{ReceivedAt: int64(i), Device: fmt.Sprintf("dev-%d", i%7),
				Transport: inlet.TCP, Remote: remote, Payload: []byte(fmt.Sprintf("%d %s", i, pad))})
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10000; i += 1000 {
		commit(i, 1000)
	}
	used, err := s.UsedBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if used < 2<<20 {
		t.Fatalf("%d bytes in use after 10,000 messages of 200 bytes", used)
	}
	target := used / 2
	n, oldest, err := s.PruneToSize(ctx, target, sqlite.PruneOptions{BatchRows: 500, Pause: 1})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := s.UsedBytes(ctx)
	left := countRows(t, path, "")
	t.Logf("in use %d bytes; PruneToSize(%d) deleted %d, %d bytes in use, %d messages left", used, target, n, after, left)
	if after > target {
		t.Fatalf("%d bytes still in use, want at most %d", after, target)
	}
	// About half the rows go: not all of them, and not one batch more than
	// it takes (the batch before the last left the pages over the target).
	if n < 4000 || n > 6000 || left != 10000-n {
		t.Fatalf("deleted %d of 10,000 messages to halve the pages in use; %d left", n, left)
	}
	// The oldest went, the newest stayed: rows go in id order, which is
	// receive order but for the rows of one commit (stored by device).
	if c := countRows(t, path, fmt.Sprintf("WHERE received_at < %d", n-1000)); c != 0 {
		t.Fatalf("%d messages more than a commit older than the %d deleted remain", c, n)
	}
	if c := countRows(t, path, fmt.Sprintf("WHERE received_at >= %d", n+1000)); c != 10000-n-1000 {
		t.Fatalf("%d messages a commit newer than the %d deleted remain, want all %d", c, n, 10000-n-1000)
	}
	if oldest < n-1000 || oldest > n+1000 {
		t.Fatalf("oldest message kept received at %d, deleted %d", oldest, n)
	}
	// Under the target: nothing to do.
	if n, _, err := s.PruneToSize(ctx, target, sqlite.PruneOptions{}); err != nil || n != 0 {
		t.Fatalf("second PruneToSize: %d, %v", n, err)
	}
	// The freed pages are reused: as much traffic again, pruned to the
	// same target, leaves the file's size as it was.
	fileSize := func() int64 {
		used, _ := s.UsedBytes(ctx)
		return used
	}
	for i := 10000; i < 20000; i += 1000 {
		commit(i, 1000)
		if _, _, err := s.PruneToSize(ctx, used, sqlite.PruneOptions{BatchRows: 500, Pause: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fileSize(); got > used {
		t.Fatalf("%d bytes in use under a %d-byte bound", got, used)
	}
	// A target nothing can reach: every message goes, and it says so.
	n, _, err = s.PruneToSize(ctx, 1, sqlite.PruneOptions{Pause: 1})
	if !errors.Is(err, sqlite.ErrNothingToPrune) || countRows(t, path, "") != 0 || n == 0 {
		t.Fatalf("PruneToSize(1): deleted %d, %v, %d left", n, err, countRows(t, path, ""))
	}
}
