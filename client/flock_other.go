//go:build !unix

package client

import "os"

// lockFile is a no-op where flock is unavailable: do not point two senders at
// one outbox there.
func lockFile(*os.File) error { return nil }
