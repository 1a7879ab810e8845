package arduinotest

import (
	"debug/elf"
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

// The library's ESP32 branch (esp_random, RTC_NOINIT_ATTR) compiles, warnings
// as errors, with arduino/host/esp32 standing in for the ESP32 core's headers.
// (Debian has no ESP32 cross-compiler; the host compiler checks the code.)
func TestESP32BranchCompiles(t *testing.T) {
	t.Parallel()
	gxx := testenv.LookPath(t, "g++ is needed to compile the library (Debian: apt-get install g++)", "g++")
	obj := filepath.Join(t.TempDir(), "Inlet-esp32.o")
	cmd := exec.Command(gxx, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-DESP32", "-Iarduino/host/esp32",
		"-Iarduino/host/include", "-Iarduino/Inlet/src", "-c", "arduino/Inlet/src/Inlet.cpp", "-o", obj)
	cmd.Dir = root(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	f, err := elf.Open(obj)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sec := f.Section(".rtc_noinit")
	if sec == nil || sec.Size != 512 {
		t.Fatalf("RTC memory section %+v: want .rtc_noinit of 512 bytes", sec)
	}
}
