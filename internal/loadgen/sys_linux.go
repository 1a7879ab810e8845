package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

// maxCPUs is the size of the affinity masks used here.
const maxCPUs = 1024

type cpuMask [maxCPUs / 64]uint64

func maskOf(cpus []int) (cpuMask, error) {
	var m cpuMask
	for _, c := range cpus {
		if c < 0 || c >= maxCPUs {
			return m, fmt.Errorf("CPU %d out of range", c)
		}
		m[c/64] |= 1 << (c % 64)
	}
	return m, nil
}

// setAffinity sets the CPU mask of one thread; tid 0 is the calling thread.
// (No golang.org/x/sys here: the raw system call is all it takes.)
func setAffinity(tid int, m *cpuMask) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(*m), uintptr(unsafe.Pointer(m)))
	if e != 0 {
		return e
	}
	return nil
}

func getAffinity(tid int) (cpuMask, error) {
	var m cpuMask
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if e != 0 {
		return m, e
	}
	return m, nil
}

// pinThread locks the calling goroutine to its OS thread and that thread to
// cpu. release restores the thread's mask and unlocks it, so the thread goes
// back to the runtime as it was.
func pinThread(cpu int) (release func(), err error) {
	runtime.LockOSThread()
	old, err := getAffinity(0)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	m, err := maskOf([]int{cpu})
	if err == nil {
		err = setAffinity(0, &m)
	}
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("sched_setaffinity: %w", err)
	}
	return func() {
		setAffinity(0, &old)
		runtime.UnlockOSThread()
	}, nil
}

// PinProcess sets the CPU mask of every thread of process pid; threads it starts
// later inherit the mask from the thread that starts them.
func PinProcess(pid int, cpus []int) error {
	m, err := maskOf(cpus)
	if err != nil {
		return fmt.Errorf("pin process %d: %w", pid, err)
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return fmt.Errorf("pin process %d: %w", pid, err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := setAffinity(tid, &m); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("pin process %d thread %d: %w", pid, tid, err)
		}
	}
	return nil
}

// ChildAttr makes a benchmark's child process die with the benchmark, even when
// the benchmark itself is killed and cannot clean up. (Pdeathsig follows the
// thread that started the child; pinThread never lets a thread exit.)
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on Linux.
const clockTicks = 100

// ProcStat is what a process has used so far.
type ProcStat struct {
	CPU     time.Duration // user plus system time of all its threads
	PeakRSS int64         // bytes (VmHWM)
	RSS     int64         // bytes resident now (VmRSS)
}

// ReadProc reads process pid's CPU time and resident memory (peak and now) from /proc.
func ReadProc(pid int) (ProcStat, error) {
	var ps ProcStat
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, fmt.Errorf("read cpu time: %w", err)
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return ps, fmt.Errorf("read cpu time: /proc/%d/stat: unexpected format", pid)
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return ps, fmt.Errorf("read cpu time: /proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return ps, fmt.Errorf("read cpu time: /proc/%d/stat: %w", pid, err)
	}
	ps.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, fmt.Errorf("read peak rss: %w", err)
	}
	if ps.PeakRSS, err = statusKB(status, "VmHWM:"); err != nil {
		return ps, fmt.Errorf("read peak rss: /proc/%d/status: %w", pid, err)
	}
	if ps.RSS, err = statusKB(status, "VmRSS:"); err != nil {
		return ps, fmt.Errorf("read rss: /proc/%d/status: %w", pid, err)
	}
	return ps, nil
}

// ReadWriteBytes reads how many bytes process pid has caused to be written to
// storage so far (write_bytes of /proc/<pid>/io: what reached the block layer,
// so nothing for files on tmpfs).
func ReadWriteBytes(pid int) (int64, error) {
	io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, fmt.Errorf("read disk writes: %w", err)
	}
	for line := range bytes.Lines(io) {
		if rest, ok := bytes.CutPrefix(line, []byte("write_bytes:")); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read disk writes: /proc/%d/io: %w", pid, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("read disk writes: /proc/%d/io: no write_bytes", pid)
}

// statusKB reads a "Name:   1234 kB" line of /proc/<pid>/status, in bytes.
func statusKB(status []byte, name string) (int64, error) {
	for line := range bytes.Lines(status) {
		if rest, ok := bytes.CutPrefix(line, []byte(name)); ok {
			fs := bytes.Fields(rest) // "1234 kB"
			if len(fs) < 1 {
				break
			}
			kb, err := strconv.ParseInt(string(fs[0]), 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s", name)
}

// ipBindAddressNoPort (IP_BIND_ADDRESS_NO_PORT, not in package syscall) defers
// the choice of the source port from bind to connect, where the kernel knows the
// destination and may reuse ports: a connect-per-message device binding its own
// address would otherwise run out of ports to TIME_WAIT within seconds.
const ipBindAddressNoPort = 24

func bindAddressNoPort(network, address string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1) // best effort
	})
}

// setSendBuffer sets a socket's send buffer (best effort).
func setSendBuffer(c syscall.RawConn, n int) error {
	return c.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, n)
	})
}
