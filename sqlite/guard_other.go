//go:build !unix && !windows

package sqlite

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// lockFile is a no-op where the platform has no file locks: there, do not
// start two servers on one database.
func lockFile(*os.File) error { return nil }
