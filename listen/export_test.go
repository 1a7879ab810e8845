package listen

import (
	"net"
	"syscall"

	"github.com/inletdev/inlet"
)

// Holding is the number of connections holding lines they have read until the
// queue has room, or until an earlier connection from their address has queued.
func (t *TCP) Holding() int64 { return t.holding.Load() }

// Framed is the number of messages the TCP readers have framed, queued or not.
func (t *TCP) Framed() int64 { return t.framed.Load() }

// Closing reports whether Close has begun.
func (t *TCP) Closing() bool { return t.closing.Load() }

// AckState reports, for the Acker of an acknowledged connection's messages,
// whether its writer goroutine is running and whether the connection has been
// released.
func AckState(a inlet.Acker) (running, released bool) {
	c := a.(*ackConn)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running, c.released
}

// Backlog is backlog, for tests.
var Backlog = backlog

// Delivered reports whether everything written on c has reached its peer's
// socket (sent and acknowledged by the peer's kernel); ok is false when unknown.
func Delivered(c net.Conn) (delivered, ok bool) {
	n, ok := outq(c.(syscall.Conn))
	return n == 0, ok
}
