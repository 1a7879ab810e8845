package sqlite_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/sqlite"
)

// BenchmarkCommitAcked measures one batch commit of n acknowledged rows (device,
// boot, seq: the unique index plain rows skip) from d devices, with their device
// and boot state, synced to disk: 64 devices pipelining is the ack scenario, 500
// devices with a few rows each is the many-devices latency case.
func BenchmarkCommitAcked(b *testing.B) {
	for _, c := range []struct{ n, devices int }{{4096, 64}, {250, 250}} {
		b.Run(fmt.Sprintf("rows=%d/devices=%d", c.n, c.devices), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "inlet.db")
			s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			remote := netip.MustParseAddrPort("127.0.0.1:40000")
			now := time.Now().UnixNano()
			perDev := c.n / c.devices
			bt := &inlet.Batch{}
			var size int64
			for i := range c.n {
				dev := i % c.devices
				p := []byte(fmt.Sprint(i/c.devices + 1))
				size += int64(len(p))
				bt.Messages = append(bt.Messages, inlet.Message{
					ReceivedAt: now, Device: fmt.Sprintf("bench-%d", dev), Transport: inlet.TCP, Remote: remote,
					Boot: "5f3a9c01", Seq: int64(i/c.devices + 1), Payload: p, Fields: []byte(`{"value":` + string(p) + `}`),
				})
			}
			for d := range c.devices {
				id := fmt.Sprintf("bench-%d", d)
				bt.Devices = append(bt.Devices, inlet.Device{ID: id, Messages: 1, FirstSeen: now, LastSeen: now})
				bt.Boots = append(bt.Boots, inlet.Boot{Device: id, Boot: "5f3a9c01", Messages: 1, FirstSeen: now, LastSeen: now})
			}
			b.SetBytes(size)
			b.ReportAllocs()
			cpu0 := benchCPU()
			for i := 0; b.Loop(); i++ {
				// Every commit stores new seqs: the unique index refuses repeats.
				// (Commit may reorder the messages; each keeps its own seq.)
				for j := range bt.Messages {
					bt.Messages[j].Seq += int64(perDev)
				}
				for j := range bt.Boots {
					bt.Boots[j].Last = int64((i + 2) * perDev)
				}
				if err := s.Commit(ctx, bt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.n*b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64((benchCPU()-cpu0).Microseconds())/float64(c.n*b.N), "cpu-µs/row")
		})
	}
}

// benchCPU is the process's user+system CPU time so far.
func benchCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMerge measures one merge (Store.Merge) of what a 500-device fleet
// leaves in the unmerged tables when a merge is due: 64 acknowledged rows per
// device (32,000), committed 250 at a time with their device and boot state,
// into a database already holding one such round. The merge holds the write
// lock, so its duration is what a commit may wait behind it.
func BenchmarkMerge(b *testing.B) {
	const devices, perDev, perCommit = 500, 64, 250
	path := filepath.Join(b.TempDir(), "inlet.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	remote := netip.MustParseAddrPort("127.0.0.1:40000")
	seq := make([]int64, devices)
	fill := func() {
		now := time.Now().UnixNano()
		for c := 0; c < devices*perDev/perCommit; c++ {
			bt := &inlet.Batch{}
			for i := range perCommit {
				d := (c*perCommit + i) % devices
				seq[d]++
				id := fmt.Sprintf("bench-%d", d)
				p := []byte(fmt.Sprint(seq[d]))
				bt.Messages = append(bt.Messages, inlet.Message{ReceivedAt: now, Device: id, Transport: inlet.TCP, Remote: remote,
					Boot: "5f3a9c01", Seq: seq[d], Payload: p, Fields: []byte(`{"value":` + string(p) + `}`)})
				bt.Devices = append(bt.Devices, inlet.Device{ID: id, Messages: seq[d], FirstSeen: now, LastSeen: now, LastBoot: "5f3a9c01"})
				bt.Boots = append(bt.Boots, inlet.Boot{Device: id, Boot: "5f3a9c01", Last: seq[d], Messages: seq[d], FirstSeen: now, LastSeen: now})
			}
			if err := s.Commit(ctx, bt); err != nil {
				b.Fatal(err)
			}
		}
	}
	fill()
	if err := s.Merge(ctx); err != nil {
		b.Fatal(err)
	}
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		fill()
		b.StartTimer()
		cpu0 := benchCPU()
		if err := s.Merge(ctx); err != nil {
			b.Fatal(err)
		}
		cpu += benchCPU() - cpu0
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(devices*perDev*b.N), "cpu-µs/row")
}

// BenchmarkDiskPerMessage commits the batches three fleets make, merging as
// the writer does (Store.Maintain after each commit), and reports the bytes
// the process caused to be written (write_bytes of /proc/self/io) per message:
// ack500, 500 acknowledged devices at 10/s each, commits of ~25 rows every 5 ms
// from as many devices, with their device and boot state; plain500, 500 plain
// devices at 10/s, a batch per 500 ms (2,500 rows from all 500); tutorial50,
// 50 devices at 1/s, 25 rows from 25 devices per 500 ms.
func BenchmarkDiskPerMessage(b *testing.B) {
	for _, c := range []struct {
		name                   string
		devices, rows, commits int
		acked                  bool
	}{{"ack500", 500, 25, 4000, true}, {"plain500", 500, 2500, 80, false}, {"tutorial50", 50, 25, 2000, false}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				path := filepath.Join(b.TempDir(), "inlet.db")
				s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				remote := netip.MustParseAddrPort("127.0.0.1:40000")
				seq := make([]int64, c.devices)
				next := 0
				w0 := writeBytes(b)
				var merges int64
				for range c.commits {
					now := time.Now().UnixNano()
					bt := &inlet.Batch{}
					for range c.rows {
						d := next % c.devices
						next++
						seq[d]++
						id := fmt.Sprintf("bench-%d", d)
						p := []byte(fmt.Sprint(seq[d]))
						m := inlet.Message{ReceivedAt: now, Device: id, Transport: inlet.TCP, Remote: remote, Payload: p,
							Fields: []byte(`{"value":` + string(p) + `}`)}
						dev := inlet.Device{ID: id, Messages: seq[d], FirstSeen: now, LastSeen: now}
						if c.acked {
							m.Boot, m.Seq = "5f3a9c01d2e4b6a8", seq[d]
							dev.LastBoot = m.Boot
							bt.Boots = append(bt.Boots, inlet.Boot{Device: id, Boot: m.Boot, Last: seq[d], Messages: seq[d], FirstSeen: now, LastSeen: now})
						} else {
							dev.Run = inlet.CounterRun{Active: true, High: seq[d], Low: 1, Seen: 1}
						}
						bt.Messages = append(bt.Messages, m)
						if len(bt.Devices) < c.devices {
							bt.Devices = append(bt.Devices, dev)
						}
					}
					if err := s.Commit(ctx, bt); err != nil {
						b.Fatal(err)
					}
					m0 := writeBytes(b)
					did, err := s.Maintain(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if did {
						merges += writeBytes(b) - m0
					}
				}
				b.ReportMetric(float64(writeBytes(b)-w0)/float64(c.rows*c.commits), "disk-B/msg")
				b.ReportMetric(float64(merges)/float64(c.rows*c.commits), "merge-B/msg")
				s.Close()
			}
		})
	}
}

// writeBytes is write_bytes of /proc/self/io.
func writeBytes(tb testing.TB) int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		tb.Skip("no /proc/self/io")
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	tb.Skip("no write_bytes in /proc/self/io")
	return 0
}
