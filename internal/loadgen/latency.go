package loadgen

import (
	"math/bits"
	"time"
)

// Latency histogram: log-linear buckets over nanoseconds, 128 sub-buckets per
// power of two, so a percentile read from it is off by at most 1/256 (0.4%) of
// its value. Values from 0 to 2^36 ns (68 s) have buckets of their own; longer
// ones land in the last. 3,840 counters: 15 KiB per device, whatever the rate.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits // 128
	histMaxBits = 36
	histBuckets = (histMaxBits-histSubBits-1)*histSub + 2*histSub
)

// histogram counts latencies. It is not safe for concurrent use: every device
// keeps its own and the generator merges them when the device stops.
type histogram struct {
	counts [histBuckets]uint32
	n      int64
	max    time.Duration
}

func histIndex(v uint64) int {
	if v >= 1<<histMaxBits {
		return histBuckets - 1
	}
	shift := max(bits.Len64(v)-(histSubBits+1), 0)
	return shift*histSub + int(v>>shift)
}

// histValue is the middle of bucket i, in nanoseconds.
func histValue(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	lo := uint64(i-shift*histSub) << shift
	return lo + (uint64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0 // the monotonic clock does not go back; this is only a guard
	}
	h.counts[histIndex(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile is the value below which a fraction q of the samples lie.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		seen += int64(c)
		if seen >= rank {
			return min(time.Duration(histValue(i)), h.max)
		}
	}
	return h.max
}

// Latency summarizes the acknowledgement latencies of a run.
type Latency struct {
	Samples int64 // messages with a latency: every acknowledged one
	P50     time.Duration
	P90     time.Duration
	P99     time.Duration
	Max     time.Duration
}

func (h *histogram) summary() Latency {
	return Latency{Samples: h.n, P50: h.quantile(0.50), P90: h.quantile(0.90), P99: h.quantile(0.99), Max: h.max}
}
