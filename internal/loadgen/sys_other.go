//go:build !linux

package loadgen

import (
	"errors"
	"syscall"
	"time"
)

const maxCPUs = 1024

var errUnsupported = errors.New("only supported on Linux")

func pinThread(cpu int) (func(), error) { return nil, errUnsupported }

// PinProcess is only supported on Linux.
func PinProcess(pid int, cpus []int) error { return errUnsupported }

// ChildAttr is nil outside Linux: there is no parent-death signal.
func ChildAttr() *syscall.SysProcAttr { return nil }

// ProcStat is what a process has used so far.
type ProcStat struct {
	CPU     time.Duration
	PeakRSS int64
	RSS     int64
}

// ReadProc is only supported on Linux.
func ReadProc(pid int) (ProcStat, error) { return ProcStat{}, errUnsupported }

func bindAddressNoPort(network, address string, c syscall.RawConn) error { return nil }

func setSendBuffer(c syscall.RawConn, n int) error { return nil }

func ReadWriteBytes(pid int) (int64, error) { return 0, errUnsupported }
