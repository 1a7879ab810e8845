//go:build unix

package sqlite

import (
	"errors"
	"os"
	"syscall"
)

// errLocked is lockFile's answer when another holder has the lock.
var errLocked = errors.New("locked")

// lockFile takes an exclusive lock on f without waiting. flock, not fcntl: an
// fcntl lock is dropped when any descriptor of the file closes in this process,
// and it is flock's lock on its own file, never on the database, so SQLite's
// own fcntl locks and readers are untouched. It is released when f closes or
// the process dies.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}
