// Package sockopt owns the UDP socket options inlet needs beyond package net: a
// receive buffer past net.core.rmem_max where the process may, and the kernel's
// count of datagrams dropped for a full buffer (SO_RXQ_OVFL), read without
// allocating. The listener and the benchmark's bare receiver share it, so both
// sides of a comparison set their sockets up the same way.
package sockopt
