package listen

import (
	"net"
	"syscall"
	"unsafe"
)

// backlog reports how many connections wait in ln's accept queue (for a
// listening socket Linux reports it as tcpi_unacked); ok is false when unknown.
func backlog(ln net.Listener) (n int, ok bool) {
	sc, isConn := ln.(syscall.Conn)
	if !isConn {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info syscall.TCPInfo
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		size := uint32(unsafe.Sizeof(info))
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	}); err != nil || errno != 0 {
		return 0, false
	}
	return int(info.Unacked), true
}
