//go:build !linux

package listen

import "syscall"

func outq(syscall.Conn) (int, bool) { return 0, false }
