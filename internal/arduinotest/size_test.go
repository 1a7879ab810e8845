package arduinotest

import (
	"debug/elf"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inletdev/inlet/internal/testenv"
)

// The targets of issue 9 for the ESP8266 build with the default buffer.
const (
	maxFlash    = 6 * 1024   // text + rodata of the library
	bufferBytes = 2048       // INLET_BUFFER_BYTES
	maxRAM      = 2048 + 512 // static RAM: the buffer plus 512 bytes
)

// xtensaFlags are the ESP8266 Arduino core's code generation flags that
// matter for size.
var xtensaFlags = []string{"-std=c++11", "-Os", "-mlongcalls", "-mtext-section-literals", "-fno-exceptions",
	"-fno-rtti", "-Wall", "-Wextra", "-Werror",
	"-Iarduino/host/target", "-Iarduino/host/include", "-Iarduino/Inlet/src"}

type sizes struct{ text, rodata, data, bss int }

func (s sizes) flash() int { return s.text + s.rodata }
func (s sizes) ram() int   { return s.data + s.bss }

// sectionSizes sums an object's allocated sections by kind; part, if not nil,
// picks the sections to count by name.
func sectionSizes(f *elf.File, part func(name string) bool) sizes {
	var s sizes
	for _, sec := range f.Sections {
		if sec.Flags&elf.SHF_ALLOC == 0 || (part != nil && !part(sec.Name)) {
			continue
		}
		n := int(sec.Size)
		switch {
		case sec.Flags&elf.SHF_EXECINSTR != 0 || strings.HasPrefix(sec.Name, ".literal"):
			s.text += n
		case sec.Type == elf.SHT_NOBITS:
			s.bss += n
		case sec.Flags&elf.SHF_WRITE != 0:
			s.data += n
		default:
			s.rodata += n
		}
	}
	return s
}

// The library cross-compiled for the ESP8266's CPU (xtensa-lx106) with the
// core's flags: it builds without warnings, and meets the flash and RAM
// targets with the default buffer.
func TestESP8266Size(t *testing.T) {
	t.Parallel()
	gxx := testenv.LookPath(t, "xtensa-lx106-elf-g++ is needed for the ESP8266 build (Debian: apt-get install gcc-xtensa-lx106)",
		"xtensa-lx106-elf-g++")
	dir := t.TempDir()
	r := root(t)
	compile := func(src, obj string, extra ...string) *elf.File {
		t.Helper()
		args := append(append(append([]string(nil), xtensaFlags...), extra...), "-c", src, "-o", filepath.Join(dir, obj))
		cmd := exec.Command(gxx, args...)
		cmd.Dir = r
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", src, err, out)
		}
		f, err := elf.Open(filepath.Join(dir, obj))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if f.Machine != elf.EM_XTENSA {
			t.Fatalf("%s: machine %v, want Xtensa", obj, f.Machine)
		}
		return f
	}
	lib := compile("arduino/Inlet/src/Inlet.cpp", "Inlet.o")
	all := sectionSizes(lib, nil)

	// What a sketch that uses one transport links (the core compiles with
	// -ffunction-sections and links with --gc-sections): the shared code plus
	// that transport's functions. (Per-function sections cost some alignment,
	// so the two parts add up to more than the whole.)
	lib = compile("arduino/Inlet/src/Inlet.cpp", "Inlet-sections.o", "-ffunction-sections", "-fdata-sections")
	isClient := func(n string) bool { return strings.Contains(n, "11InletClient") }
	isUDP := func(n string) bool { return strings.Contains(n, "8InletUDP") }
	client := sectionSizes(lib, func(n string) bool { return !isUDP(n) })
	udp := sectionSizes(lib, func(n string) bool { return !isClient(n) })

	inst := compile("arduino/host/target/measure.cpp", "measure.o")
	syms, err := inst.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	size := make(map[string]int)
	for _, s := range syms {
		size[s.Name] = int(s.Size)
	}
	clientRAM, udpRAM := size["inlet_client_size"], size["inlet_udp_size"]
	if clientRAM < bufferBytes || udpRAM < bufferBytes {
		t.Fatalf("sizeof(InletClient) %d, sizeof(InletUDP) %d: smaller than the buffer?", clientRAM, udpRAM)
	}

	t.Logf("Inlet.cpp, both transports: text %d + rodata %d = %d bytes of flash; data %d + bss %d", all.text, all.rodata,
		all.flash(), all.data, all.bss)
	t.Logf("with InletClient only: %d bytes of flash; static RAM %d (sizeof(InletClient) %d + library %d)",
		client.flash(), clientRAM+all.ram(), clientRAM, all.ram())
	t.Logf("with InletUDP only: %d bytes of flash; static RAM %d (sizeof(InletUDP) %d + library %d)",
		udp.flash(), udpRAM+all.ram(), udpRAM, all.ram())
	if all.flash() > maxFlash {
		t.Errorf("flash %d bytes (text %d + rodata %d), want at most %d", all.flash(), all.text, all.rodata, maxFlash)
	}
	if client.flash() > maxFlash || udp.flash() > maxFlash {
		t.Errorf("flash with one transport %d and %d bytes, want at most %d", client.flash(), udp.flash(), maxFlash)
	}
	// The ESP8266 core's linker script keeps .rodata in RAM (hence F() and
	// PROGMEM), so the library's constant strings count as RAM there too.
	for name, ram := range map[string]int{"InletClient": clientRAM + all.ram(), "InletUDP": udpRAM + all.ram()} {
		if ram+all.rodata > maxRAM {
			t.Errorf("static RAM with one %s: %d bytes + %d of rodata, want at most %d (the buffer + 512)", name, ram,
				all.rodata, maxRAM)
		}
	}
}
