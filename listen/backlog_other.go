//go:build !linux

package listen

import "net"

// backlog is unknown here: the accept loop stops at the drain deadline.
func backlog(net.Listener) (int, bool) { return 0, false }
