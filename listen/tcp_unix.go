//go:build unix

package listen

import (
	"net"
	"syscall"
	"unsafe"
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

// waitReadable blocks until the socket has bytes, an EOF or an error to report,
// honouring the read deadline, without holding a read buffer: an idle connection
// then costs its goroutine and a few small structs, not 16 KiB of buffer.
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
	var sockErr error
	if err := rc.Read(func(fd uintptr) bool {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&peek[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch errno {
		case syscall.EAGAIN, syscall.EINTR:
			return false
		case 0:
		default:
			// The peek has taken the socket's pending error (a reset, say); a
			// later read would see a plain EOF, so report the error here.
			sockErr = errno
		}
		return true
	}); err != nil {
		return err
	}
	return sockErr
}
