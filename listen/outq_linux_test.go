package listen

import (
	"syscall"
	"unsafe"
)

// outq is the bytes of a socket's send queue not yet acknowledged by the peer,
// sent or not (SIOCOUTQ).
func outq(sc syscall.Conn) (int, bool) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var n int32
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	}); err != nil || errno != 0 {
		return 0, false
	}
	return int(n), true
}
