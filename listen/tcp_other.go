//go:build !unix

package listen

import "net"

// readNow never reads inline where raw reads are not available.
func readNow(net.Conn, []byte) (int, bool, error) { return 0, false, nil }

// waitReadable does not wait where raw reads are not available: Read waits instead.
func waitReadable(net.Conn) error { return nil }
