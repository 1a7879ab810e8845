package arduinotest

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/inletdev/inlet/internal/testenv"
)

// Every example sketch compiles against the library's API (the host's
// Arduino headers plus a WiFi stand-in in arduino/host/sketch), warnings as
// errors.
func TestExamplesCompile(t *testing.T) {
	t.Parallel()
	gxx := testenv.LookPath(t, "g++ is needed to compile the examples (Debian: apt-get install g++)", "g++")
	r := root(t)
	sketches, err := filepath.Glob(filepath.Join(r, "arduino/Inlet/examples/*/*.ino"))
	if err != nil || len(sketches) < 3 {
		t.Fatalf("examples: %v %v", sketches, err)
	}
	for _, ino := range sketches {
		cmd := exec.Command(gxx, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-DINLET_HOST", "-DINLET_SKETCH",
			"-Iarduino/host/sketch", "-Iarduino/host/include", "-Iarduino/Inlet/src",
			"-x", "c++", "-c", ino, "-o", filepath.Join(t.TempDir(), "sketch.o"))
		cmd.Dir = r
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", filepath.Base(ino), err, out)
		}
	}
}
