// Package loadgen owns load generation and the bare baseline receiver for
// benchmarks (inlet bench).
//
// The generator emulates devices that send the tutorial's counters ("1\r\n",
// "2\r\n", ...) over TCP or UDP, as fast as they can or at a fixed rate, each
// from a loopback address of its own so that the server sees one device per
// emulated device; the TCP scenarios can run inside TLS (crypto/tls clients,
// full or resumed handshakes, counted). The acknowledged scenarios (ack,
// ack-cpm) speak INLET/1 instead: each device sends a hello with its own id and
// the run's boot id, then "<seq> <counter>" lines, and the generator counts the
// ACKs and times each message from its write to the ACK covering it. The
// baseline receiver reads the plain traffic and only counts it: set against it,
// inlet's numbers show what storing every message costs over merely reading the
// bytes. The package also reads a process's CPU time and peak memory from /proc
// and pins threads to CPUs, so that a benchmark on a small machine can keep the
// sender from starving the receiver.
//
// Bench runs a whole measurement as inlet bench does: it starts inlet serve
// (or the baseline) as a child process on free loopback ports, sends the load,
// waits until the receiver has stored what it received, and reads what it cost
// from the outside: the counters of /metrics (its own commit figures among
// them), the rows of its database (read only), and its CPU time, memory and
// disk writes from /proc. It returns the numbers as a Report; the command
// prints them.
//
// It must not import the server's packages: it measures them from the outside,
// through sockets and /proc. It only ever sends to loopback addresses.
package loadgen
