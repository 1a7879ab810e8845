package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestURL: each URL is its own empty database on a durable server.
func TestURL(t *testing.T) {
	ctx := context.Background()
	a, b := URL(t), URL(t)
	if a == b {
		t.Fatalf("two tests got the same database %s", a)
	}
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var fsync, sc string
	var tables int
	if err := conn.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit'), "+
		"(SELECT count(*) FROM pg_tables WHERE schemaname = 'public')").Scan(&fsync, &sc, &tables); err != nil {
		t.Fatal(err)
	}
	if fsync != "on" || sc != "on" || tables != 0 {
		t.Fatalf("fsync=%s synchronous_commit=%s tables=%d; want on, on, 0", fsync, sc, tables)
	}
}
