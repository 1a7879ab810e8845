//go:build !unix

package tlsserve

import "net"

// waitReadable is a no-op here: Wait then waits inside crypto/tls's read.
func waitReadable(net.Conn) error { return nil }
