//go:build !linux

package listen

import (
	"net"
	"syscall"
)

// backlog is unknown here: the accept loop stops at the drain deadline.
func backlog(net.Listener) (int, bool) { return 0, false }

func unacked(syscall.Conn) (int, bool) { return 0, false }
