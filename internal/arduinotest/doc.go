// Package arduinotest owns the tests of the Arduino library in arduino/Inlet:
// the library compiled for the host with g++ against arduino/host (a POSIX
// implementation of the Arduino API it uses) into a small "device" program,
// driven against the real `inlet serve` on loopback through proxies that cut
// connections and drop datagrams; and the library cross-compiled for the
// ESP8266's CPU (xtensa-lx106) to check its flash and RAM targets.
//
// It has no code of its own beyond this comment: everything is in _test.go
// files. The C++ compilers are outside tools (internal/testenv): the tests
// skip without them under plain `go test` and fail under scripts/test.
package arduinotest
