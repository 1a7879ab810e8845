package sockopt

import (
	"encoding/binary"
	"net"
	"os"
	"strconv"
	"strings"
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

// Inode returns the socket's inode number, which names it in /proc/net/udp.
func Inode(c *net.UDPConn) (uint64, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var st syscall.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil || serr != nil {
		return 0, false
	}
	return st.Ino, true
}

// UDPDrops reads the kernel's count of datagrams dropped on the socket with
// inode ino (the drops column of /proc/net/udp or /proc/net/udp6): the counter
// SO_RXQ_OVFL attaches to datagrams, readable when none arrive.
func UDPDrops(ino uint64) (uint32, bool) {
	want := strconv.FormatUint(ino, 10)
	for _, path := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if d, ok := parseProcUDP(b, want); ok {
			return d, true
		}
	}
	return 0, false
}

// parseProcUDP finds the drops of the socket with inode ino in a /proc/net/udp
// table: "sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref pointer drops".
func parseProcUDP(b []byte, ino string) (uint32, bool) {
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 13 || f[9] != ino {
			continue
		}
		d, err := strconv.ParseUint(f[12], 10, 32)
		return uint32(d), err == nil
	}
	return 0, false
}
