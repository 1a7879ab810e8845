// Package testenv owns the test suite's rule for tests that need something from
// outside Go (a browser, a cross-compiler, root, a database server): run by the
// README's test command (scripts/test, which sets INLET_TEST_REQUIRE=1), such a
// test fails when its tool is missing; run with plain `go test`, it skips.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Required reports whether the whole suite is being run by scripts/test, where
// every part must run and a missing tool is a failure, not a skip.
func Required() bool { return os.Getenv("INLET_TEST_REQUIRE") == "1" }

// Missing ends the test for a missing tool or condition: a failure under
// scripts/test, a skip otherwise. why says what is missing and how to get it.
func Missing(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s (scripts/test requires every part of the suite to run)", why)
	}
	t.Skip(why)
}

// LookPath returns the path of the first of names found (an absolute path is
// checked as it is, a bare name on PATH), or ends the test through Missing.
func LookPath(t testing.TB, hint string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	Missing(t, hint)
	return ""
}

// Root ends the test through Missing unless it runs as root.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root: "+why)
	}
}
