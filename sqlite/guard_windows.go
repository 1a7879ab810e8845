//go:build windows

package sqlite

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
)

var errLocked = errors.New("locked")

var procLockFileEx = syscall.NewLazyDLL("kernel32.dll").NewProc("LockFileEx")

// lockFile takes an exclusive lock on the first byte past any pid ever written
// (so others can still read the holder's pid) without waiting; it is released
// when f closes or the process dies.
func lockFile(f *os.File) error {
	const (
		lockfileFailImmediately = 0x1
		lockfileExclusiveLock   = 0x2
		errorLockViolation      = syscall.Errno(33)
	)
	ol := new(syscall.Overlapped)
	ol.Offset = 1 << 30
	r, _, err := procLockFileEx.Call(f.Fd(), lockfileExclusiveLock|lockfileFailImmediately, 0, 1, 0, uintptr(unsafe.Pointer(ol)))
	if r != 0 {
		return nil
	}
	if errors.Is(err, errorLockViolation) {
		return errLocked
	}
	return err
}
