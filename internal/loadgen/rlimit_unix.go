//go:build unix

package loadgen

import (
	"fmt"
	"syscall"
)

// RaiseOpenFiles raises this process's soft limit on open files (RLIMIT_NOFILE)
// to at least need, up to the hard limit, and reports an error naming both when
// the hard limit is lower. Processes it starts afterwards inherit the limit
// (Go restores the original soft limit in children only until Setrlimit is called).
func RaiseOpenFiles(need uint64) (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("open files limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, 0, fmt.Errorf("raise the open files limit to %d: %w", lim.Max, err)
		}
	}
	// The fields are uint64 on Linux and int64 on the BSDs.
	soft, hard = uint64(lim.Cur), uint64(lim.Max)
	if soft < need {
		return soft, hard, fmt.Errorf("open files: need %d, the hard limit is %d (raise it: ulimit -Hn %d as root, "+
			"or LimitNOFILE= under systemd)", need, hard, need)
	}
	return soft, hard, nil
}
