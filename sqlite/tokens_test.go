package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/inletdev/inlet/sqlite"
)

func hash(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func mustVersion(t *testing.T, s *sqlite.Store) int64 {
	t.Helper()
	v, err := s.TokensVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The server (a writer Store) sees every change inlet token makes from its own
// Store (OpenTokens, as another process does): in TokensVersion and in Tokens.
func TestTokensSharedWithServer(t *testing.T) {
	ctx := context.Background()
	srv, path := MustOpen(t)
	cli, err := sqlite.OpenTokens(ctx, path) // while the server holds the database
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	v0 := mustVersion(t, srv)
	if err := cli.AddToken(ctx, "pump-1", hash(1), 100, false); err != nil {
		t.Fatal(err)
	}
	v1 := mustVersion(t, srv)
	if v1 == v0 {
		t.Fatalf("TokensVersion still %d after AddToken", v1)
	}
	// Messages committed meanwhile do not move it: the server rereads tokens
	// only when they change.
	if err := srv.Commit(ctx, batch(0, 10, 2, 1)); err != nil {
		t.Fatal(err)
	}
	if v := mustVersion(t, srv); v != v1 {
		t.Fatalf("TokensVersion moved from %d to %d on a commit of messages", v1, v)
	}

	if err := cli.AddToken(ctx, "pump-1", hash(2), 200, false); !errors.Is(err, sqlite.ErrTokenExists) {
		t.Fatalf("AddToken over a valid token without replace: %v, want ErrTokenExists", err)
	}
	if v := mustVersion(t, srv); v != v1 {
		t.Fatalf("a refused AddToken moved TokensVersion")
	}
	toks, err := srv.Tokens(ctx)
	if err != nil || len(toks) != 1 || !bytes.Equal(toks[0].Hash, hash(1)) || toks[0].CreatedAt != 100 || toks[0].RevokedAt != 0 {
		t.Fatalf("Tokens after a refused add: %+v, %v", toks, err)
	}

	if err := cli.AddToken(ctx, "pump-1", hash(2), 200, true); err != nil {
		t.Fatal(err)
	}
	v2 := mustVersion(t, srv)
	if toks, _ := srv.Tokens(ctx); len(toks) != 1 || !bytes.Equal(toks[0].Hash, hash(2)) || toks[0].CreatedAt != 200 {
		t.Fatalf("Tokens after replace: %+v", toks)
	}
	if v2 == v1 {
		t.Fatal("TokensVersion unchanged by a replace")
	}

	if err := cli.RevokeToken(ctx, "pump-1", 300); err != nil {
		t.Fatal(err)
	}
	v3 := mustVersion(t, srv)
	if toks, _ := srv.Tokens(ctx); len(toks) != 1 || toks[0].RevokedAt != 300 {
		t.Fatalf("Tokens after revoke: %+v", toks)
	}
	if v3 == v2 {
		t.Fatal("TokensVersion unchanged by a revoke")
	}
	if err := cli.RevokeToken(ctx, "pump-1", 400); !errors.Is(err, sqlite.ErrNoToken) {
		t.Fatalf("second revoke: %v, want ErrNoToken", err)
	}
	if err := cli.RevokeToken(ctx, "never-added", 400); !errors.Is(err, sqlite.ErrNoToken) {
		t.Fatalf("revoke of an unknown device: %v, want ErrNoToken", err)
	}
	// A revoked device takes a new token without --replace.
	if err := cli.AddToken(ctx, "pump-1", hash(3), 500, false); err != nil {
		t.Fatalf("add after revoke: %v", err)
	}
	if toks, _ := srv.Tokens(ctx); len(toks) != 1 || toks[0].RevokedAt != 0 || !bytes.Equal(toks[0].Hash, hash(3)) {
		t.Fatalf("Tokens after re-adding: %+v", toks)
	}

	// A change made by hand (sqlite3) moves the version too: triggers keep it.
	v4 := mustVersion(t, srv)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("DELETE FROM tokens WHERE device = 'pump-1'"); err != nil {
		t.Fatal(err)
	}
	if v := mustVersion(t, srv); v == v4 {
		t.Fatal("TokensVersion unchanged by a DELETE by hand")
	}
	if toks, _ := srv.Tokens(ctx); len(toks) != 0 {
		t.Fatalf("Tokens after the DELETE: %+v", toks)
	}
}

// inlet token may be the first command run: it creates the database, and
// migrates an older one, as inlet serve would.
func TestOpenTokensCreatesAndMigrates(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := sqlite.OpenTokens(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddToken(ctx, "a", hash(1), 1, false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	srv, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("serve on a database inlet token made: %v", err)
	}
	if toks, err := srv.Tokens(ctx); err != nil || len(toks) != 1 {
		t.Fatalf("Tokens: %+v, %v", toks, err)
	}
	srv.Close()

	old := filepath.Join(t.TempDir(), "v1.db")
	copyFile(t, filepath.Join("testdata", "v1.db"), old)
	s, err = sqlite.OpenTokens(ctx, old)
	if err != nil {
		t.Fatalf("OpenTokens on a version 1 database: %v", err)
	}
	defer s.Close()
	if toks, err := s.Tokens(ctx); err != nil || len(toks) != 0 {
		t.Fatalf("Tokens of a migrated database: %+v, %v", toks, err)
	}

	notInlet := filepath.Join(t.TempDir(), "other.db")
	if err := os.WriteFile(notInlet, []byte("not a database at all, just some text that is long enough"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.OpenTokens(ctx, notInlet); err == nil {
		s.Close()
		t.Fatal("OpenTokens accepted a file that is not a database")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
