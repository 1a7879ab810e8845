package sqlite_test

import (
	"context"
	"testing"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

func TestPruneDeletesOnlyOlderRows(t *testing.T) {
	ctx := context.Background()
	s, path := MustOpen(t)
	const sec = int64(1e9)
	// 50 batches a second apart, 100 rows each; every row of a batch has its time.
	for i := range 50 {
		if err := s.Commit(ctx, batch(i*100, 100, 7, int64(i)*sec)); err != nil {
			t.Fatal(err)
		}
	}
	// One row numbered late but received early (a straggler within the slack).
	late := batch(5000, 1, 7, 19*sec+sec/2)
	if err := s.Commit(ctx, late); err != nil {
		t.Fatal(err)
	}
	before := int64(20) * sec
	n, err := s.Prune(ctx, before, sqlite.PruneOptions{BatchRows: 37})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2001 {
		t.Fatalf("pruned %d rows, want the 2000 received before 20 s and the straggler", n)
	}
	if c := countRows(t, path, "WHERE received_at < 20000000000"); c != 0 {
		t.Fatalf("%d rows received before the bound remain", c)
	}
	if c := countRows(t, path, ""); c != 3000 {
		t.Fatalf("%d rows remain, want 3000", c)
	}
	// Again: nothing more to do.
	if n, err := s.Prune(ctx, before, sqlite.PruneOptions{}); err != nil || n != 0 {
		t.Fatalf("second prune: %d, %v", n, err)
	}
}

// A pruned acknowledged range is neither missing nor stored again when resent:
// the boot's state, not the rows, decides.
func TestPruneKeepsAcknowledgedState(t *testing.T) {
	ctx := context.Background()
	s, _ := MustOpen(t)
	b := &inlet.Batch{Boots: []inlet.Boot{{Device: "d", Boot: "b", Last: 10, Messages: 10, FirstSeen: 1, LastSeen: 10}}}
	for seq := int64(1); seq <= 10; seq++ {
		b.Messages = append(b.Messages, inlet.Message{Device: "d", Boot: "b", Seq: seq, Payload: []byte("x"), ReceivedAt: seq})
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(ctx, 1e12, sqlite.PruneOptions{}); err != nil || n != 10 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	boot, ok, err := s.Boot(ctx, "d", "b")
	if err != nil || !ok || boot.Last != 10 || len(boot.Missing) != 0 || boot.Durable() != 10 {
		t.Fatalf("boot after prune: %+v ok=%v err=%v", boot, ok, err)
	}
}
