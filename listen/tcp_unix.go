//go:build unix

package listen

import (
	"net"
	"syscall"
)

// readNow reads what the socket holds without waiting for more: n > 0 bytes,
// eof at the peer's FIN, or n == 0 with no error when nothing is there yet.
func readNow(c net.Conn, buf []byte) (n int, eof bool, err error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var errno error
	if err := rc.Read(func(fd uintptr) bool {
		n, errno = syscall.Read(int(fd), buf)
		return true // never wait in the poller
	}); err != nil {
		return 0, false, err
	}
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EINTR:
		return 0, false, nil
	case errno != nil:
		return 0, false, errno
	case n == 0:
		return 0, true, nil
	}
	return n, false, nil
}
