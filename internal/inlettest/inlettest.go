// Package inlettest owns what tests in several packages need to run the real
// inlet binary: building it once per test process, and a buffer its output can be
// written to from one goroutine while a test reads it from another. Only tests
// import it.
package inlettest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once sync.Once
	dir  string
	path string
	err  error
)

// Binary builds cmd/inlet once per test process and returns its path. It is
// built without -race even when the tests run with it: the pure-Go SQLite is
// about 20x slower under the detector, and whole-process tests would measure it.
// Call Cleanup from TestMain to remove it.
func Binary(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if dir, err = os.MkdirTemp("", "inlet-bin-"); err != nil {
			return
		}
		path = filepath.Join(dir, "inlet")
		if out, berr := exec.Command("go", "build", "-o", path, "github.com/inletdev/inlet/cmd/inlet").CombinedOutput(); berr != nil {
			err = fmt.Errorf("go build github.com/inletdev/inlet/cmd/inlet: %v\n%s", berr, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Cleanup removes the binary Binary built, if any.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}

// Buffer is a bytes.Buffer safe for one writer goroutine (a process's stderr)
// and readers in others.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
