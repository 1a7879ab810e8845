//go:build unix

package tlsserve

import (
	"net"
	"syscall"
	"unsafe"
)

// waitReadable blocks until the socket under c has bytes, an EOF or an error
// to report, honouring the read deadline, without reading anything: the
// goroutine waits in the poller with a shallow stack instead of inside
// crypto/tls's record reader.
func waitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var peek [1]byte
	return rc.Read(func(fd uintptr) bool {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&peek[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		return errno != syscall.EAGAIN && errno != syscall.EINTR
	})
}
