//go:build !linux

package sockopt

import "net"

// SetRecvBuffer sets the receive buffer where the kernel allows.
func SetRecvBuffer(c *net.UDPConn, n int) int {
	if c.SetReadBuffer(n) != nil {
		return 0
	}
	return n
}

// EnableDropCount is not available here: drops are not counted.
func EnableDropCount(*net.UDPConn) error { return nil }

// ParseDropCount never finds a count here.
func ParseDropCount([]byte) (uint32, bool) { return 0, false }

// Inode is not available here.
func Inode(*net.UDPConn) (uint64, bool) { return 0, false }

// UDPDrops is not available here.
func UDPDrops(uint64) (uint32, bool) { return 0, false }
