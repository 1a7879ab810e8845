package postgres_test

import (
	"context"
	"testing"

	"github.com/inletdev/inlet/internal/pgtest"
)

// Two nodes on one database share a publisher's position, and a save never
// moves it back.
func TestPublishPosition(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a, b := open(t, url), open(t, url)
	if id, err := a.PublishPosition(ctx, "nats"); err != nil || id != 0 {
		t.Fatalf("new position = %d, %v; want 0", id, err)
	}
	if err := a.SetPublishPosition(ctx, "nats", 40); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPublishPosition(ctx, "nats", 25); err != nil { // late save from another node
		t.Fatal(err)
	}
	if id, err := b.PublishPosition(ctx, "nats"); err != nil || id != 40 {
		t.Fatalf("after saves of 40 then 25: %d, %v; want 40", id, err)
	}
	if err := b.SetPublishPosition(ctx, "node-b", 7); err != nil {
		t.Fatal(err)
	}
	if id, err := a.PublishPosition(ctx, "node-b"); err != nil || id != 7 {
		t.Fatalf("node-b = %d, %v; want 7", id, err)
	}
	if id, _ := a.PublishPosition(ctx, "nats"); id != 40 {
		t.Fatalf("nats moved to %d by another name's save", id)
	}
}
