package sockopt

import (
	"encoding/binary"
	"net"
	"syscall"
	"unsafe"
)

// SetRecvBuffer asks for a receive buffer of n bytes, past net.core.rmem_max when
// the process may (SO_RCVBUFFORCE needs CAP_NET_ADMIN), and returns what the
// kernel granted.
func SetRecvBuffer(c *net.UDPConn, n int) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	got := 0
	rc.Control(func(fd uintptr) {
		if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n) != nil {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}
		got, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	return got
}

// EnableDropCount asks the kernel to attach its count of datagrams dropped on this
// socket (SO_RXQ_OVFL) to every datagram read.
func EnableDropCount(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, 1)
	}); err != nil {
		return err
	}
	return serr
}

// ParseDropCount finds the SO_RXQ_OVFL counter in a datagram's control messages
// without allocating (syscall.ParseSocketControlMessage allocates per call). oob
// must come from make, so that its start is aligned for a Cmsghdr.
func ParseDropCount(oob []byte) (uint32, bool) {
	const hdr = syscall.SizeofCmsghdr
	const align = int(unsafe.Sizeof(uintptr(0))) // CMSG_ALIGN: sizeof(long)
	for len(oob) >= hdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			return 0, false
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SO_RXQ_OVFL && l >= hdr+4 {
			return binary.NativeEndian.Uint32(oob[hdr:]), true
		}
		next := (l + align - 1) &^ (align - 1)
		if next >= len(oob) {
			return 0, false
		}
		oob = oob[next:]
	}
	return 0, false
}
