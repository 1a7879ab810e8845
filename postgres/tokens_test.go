package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/internal/pgtest"
	"github.com/inletdev/inlet/postgres"
	"github.com/inletdev/inlet/sqlite"
)

// tokenStore is what both stores offer inlet token and serve.
type tokenStore interface {
	AddToken(ctx context.Context, device string, hash []byte, at int64, replace bool) error
	RevokeToken(ctx context.Context, device string, at int64) error
	Tokens(ctx context.Context) ([]inlet.Token, error)
	TokensVersion(ctx context.Context) (int64, error)
}

func hash(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// TestTokens: the tokens of a node's store follow what inlet token does over
// another connection (add, refuse a second add, replace, revoke, take a new
// token after a revocation), exactly as SQLite's do, and TokensVersion moves
// with every change, from any connection or by hand, but not with a refused
// change nor with message commits.
func TestTokens(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	node := open(t, url) // the server's store
	admin, err := postgres.OpenTokens(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	lite, err := sqlite.OpenTokens(ctx, filepath.Join(t.TempDir(), "inlet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()

	version := func() int64 {
		t.Helper()
		v, err := node.TokensVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if toks, err := node.Tokens(ctx); err != nil || len(toks) != 0 {
		t.Fatalf("tokens of a new database: %v, %v", toks, err)
	}
	steps := []struct {
		name    string
		do      func(s tokenStore) error
		wantErr error // nil: the change is made and the version moves
	}{
		{"add pump-1", func(s tokenStore) error { return s.AddToken(ctx, "pump-1", hash(1), 100, false) }, nil},
		{"add esp-b", func(s tokenStore) error { return s.AddToken(ctx, "esp-b", hash(2), 110, false) }, nil},
		{"add pump-1 again", func(s tokenStore) error { return s.AddToken(ctx, "pump-1", hash(3), 120, false) }, inlet.ErrTokenExists},
		{"replace pump-1", func(s tokenStore) error { return s.AddToken(ctx, "pump-1", hash(4), 130, true) }, nil},
		{"revoke pump-1", func(s tokenStore) error { return s.RevokeToken(ctx, "pump-1", 140) }, nil},
		{"revoke pump-1 again", func(s tokenStore) error { return s.RevokeToken(ctx, "pump-1", 150) }, inlet.ErrNoToken},
		{"revoke unknown", func(s tokenStore) error { return s.RevokeToken(ctx, "nobody", 160) }, inlet.ErrNoToken},
		{"add revoked pump-1", func(s tokenStore) error { return s.AddToken(ctx, "pump-1", hash(5), 170, false) }, nil},
	}
	for _, st := range steps {
		before := version()
		err := st.do(admin)
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil) != (err == nil) {
			t.Fatalf("%s: %v, want %v", st.name, err, st.wantErr)
		}
		if lerr := st.do(lite); !errors.Is(lerr, st.wantErr) || (st.wantErr == nil) != (lerr == nil) {
			t.Fatalf("%s in SQLite: %v, want %v", st.name, lerr, st.wantErr)
		}
		if after := version(); (after != before) != (st.wantErr == nil) {
			t.Fatalf("%s: tokens version %d, then %d", st.name, before, after)
		}
		got, err := node.Tokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want, err := lite.Tokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: tokens %+v\nSQLite's %+v", st.name, got, want)
		}
	}
	want := []inlet.Token{{Device: "esp-b", Hash: hash(2), CreatedAt: 110}, {Device: "pump-1", Hash: hash(5), CreatedAt: 170}}
	if got, _ := admin.Tokens(ctx); !reflect.DeepEqual(got, want) {
		t.Fatalf("tokens %+v, want %+v", got, want)
	}
	if err := node.RevokeToken(ctx, "esp-b", 180); err != nil {
		t.Fatal(err)
	}
	if got, _ := admin.Tokens(ctx); len(got) != 2 || got[0].RevokedAt != 180 {
		t.Fatalf("revoked by the node's store, seen by inlet token's: %+v", got)
	}

	// Message commits leave the version alone.
	before := version()
	n := newNode(t, node)
	for i := range 20 {
		n.send(t, plain("192.0.2.7", i, int64(i)), acked("pump-1", "b1", i, int64(i+1)))
	}
	if after := version(); after != before {
		t.Fatalf("tokens version moved from %d to %d with message commits", before, after)
	}
	// A change by hand moves it too.
	if err := pgtest.Exec(ctx, url, "DELETE FROM tokens WHERE device = 'esp-b'"); err != nil {
		t.Fatal(err)
	}
	if after := version(); after == before {
		t.Fatal("tokens version did not move with a DELETE by hand")
	}
	if got, _ := node.Tokens(ctx); len(got) != 1 || got[0].Device != "pump-1" {
		t.Fatalf("after the DELETE: %+v", got)
	}
}

// TestOpenTokensMigrates: inlet token on an empty database creates the
// schema, and on a database of the previous version (an older inlet's)
// migrates it, keeping its messages.
func TestOpenTokensMigrates(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	s, err := postgres.OpenTokens(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddToken(ctx, "pump-1", hash(1), 1, false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var top int
	if err := queryRow(ctx, url, "SELECT max(version) FROM inlet_schema", &top); err != nil || top != postgres.SchemaVersion() {
		t.Fatalf("schema version %d (%v), want %d", top, err, postgres.SchemaVersion())
	}

	old := pgtest.URL(t)
	if err := postgres.MigrateTo(ctx, old, postgres.SchemaVersion()-1); err != nil {
		t.Fatal(err)
	}
	if err := pgtest.Exec(ctx, old, "INSERT INTO messages (received_at, device, transport, remote, payload) VALUES (1, '192.0.2.7', 'tcp', '192.0.2.7:4000', '\\x3432')"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, old, postgres.Options{ReadOnly: true}); err == nil {
		t.Fatal("a reader opened an older schema")
	}
	s, err = postgres.OpenTokens(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if toks, err := s.Tokens(ctx); err != nil || len(toks) != 0 {
		t.Fatalf("tokens after the migration: %v, %v", toks, err)
	}
	var n int
	if err := queryRow(ctx, old, "SELECT count(*) FROM messages", &n); err != nil || n != 1 {
		t.Fatalf("messages after the migration: %d, %v", n, err)
	}
	if err := queryRow(ctx, old, "SELECT max(version) FROM inlet_schema", &top); err != nil || top != postgres.SchemaVersion() {
		t.Fatalf("schema version %d (%v), want %d", top, err, postgres.SchemaVersion())
	}
}

// TestImportTokens: inlet migrate's copy of a SQLite file's tokens adds the
// devices the database lacks and, of a device in both, keeps the row changed
// last; a second copy writes nothing, and takes a later revocation.
func TestImportTokens(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.OpenTokens(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddToken(ctx, "a", hash(1), 100, false); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "a", 500); err != nil { // revoked here after the source's copy was made
		t.Fatal(err)
	}
	if err := s.AddToken(ctx, "d", hash(9), 100, false); err != nil { // older than the source's
		t.Fatal(err)
	}
	src := []inlet.Token{
		{Device: "a", Hash: hash(2), CreatedAt: 200},
		{Device: "b", Hash: hash(3), CreatedAt: 300, RevokedAt: 400},
		{Device: "c", Hash: hash(4), CreatedAt: 50},
		{Device: "d", Hash: hash(5), CreatedAt: 150},
	}
	if n, err := s.ImportTokens(ctx, src); err != nil || n != 3 {
		t.Fatalf("import: %d rows, %v; want 3", n, err)
	}
	want := []inlet.Token{
		{Device: "a", Hash: hash(1), CreatedAt: 100, RevokedAt: 500},
		src[1], src[2], src[3],
	}
	if got, err := s.Tokens(ctx); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after the import: %+v, %v\nwant %+v", got, err, want)
	}
	if n, err := s.ImportTokens(ctx, src); err != nil || n != 0 {
		t.Fatalf("import again: %d rows, %v; want 0", n, err)
	}
	src[2].RevokedAt = 600
	if n, err := s.ImportTokens(ctx, src); err != nil || n != 1 {
		t.Fatalf("import a revocation: %d rows, %v; want 1", n, err)
	}
	want[2].RevokedAt = 600
	if got, err := s.Tokens(ctx); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after the revocation's import: %+v, %v\nwant %+v", got, err, want)
	}
}
