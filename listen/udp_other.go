//go:build !linux

package listen

import "net"

func setRecvBuffer(c *net.UDPConn, n int) int {
	if c.SetReadBuffer(n) != nil {
		return 0
	}
	return n
}

func enableDropCount(*net.UDPConn) error { return nil }

func parseDropCount([]byte) (uint32, bool) { return 0, false }
