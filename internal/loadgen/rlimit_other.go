//go:build !unix

package loadgen

// RaiseOpenFiles does nothing where there is no RLIMIT_NOFILE.
func RaiseOpenFiles(need uint64) (soft, hard uint64, err error) { return 0, 0, nil }
