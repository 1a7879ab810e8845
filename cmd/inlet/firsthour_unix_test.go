//go:build unix

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/inletdev/inlet/sqlite"
)

// asNobody makes dir (and its parents up to the test's temp root) usable by an
// unprivileged user, and returns how to run the binary as that user: the root
// this suite may run as writes to read-only files regardless.
func asNobody(t *testing.T, dirs ...string) func(*exec.Cmd) {
	if os.Geteuid() != 0 {
		return nil
	}
	for _, d := range append(dirs, filepath.Dir(inletBinary(t))) {
		for p := d; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
}

// A read-only database, or one in a read-only directory, fails before the
// ready line, saying what to do.
func TestReadOnlyDatabaseFailsAtStart(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "inlet.db")
	s, err := sqlite.Open(context.Background(), db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Remove(sqlite.LockPath(db))
	cred := asNobody(t, dir)
	if err := os.Chmod(db, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	args := []string{"serve", "--tcp", "127.0.0.1:0", "--udp", "", "--http", "", "--db", db}
	code, stdout, stderr := runInlet(t, cred, args...)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "read-only") || !strings.Contains(stderr, "chmod") {
		t.Errorf("read-only database: exit %d, stdout %q, stderr:\n%s\nwant exit 1 before the ready line, saying how to fix it", code, stdout, stderr)
	}
	for _, f := range []string{"-lock", "-wal", "-shm"} {
		os.Remove(db + f)
	}
	if err := os.Chmod(db, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	code, stdout, stderr = runInlet(t, cred, args...)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "make the directory writable") {
		t.Errorf("read-only directory: exit %d, stdout %q, stderr:\n%s\nwant exit 1 before the ready line, saying how to fix it", code, stdout, stderr)
	}
}
