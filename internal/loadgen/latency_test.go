package loadgen

import (
	"math"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 257, 511, 512, 1e3, 1e6, 1e9, 1<<36 - 1} {
		i := histIndex(v)
		if i < prev || i >= histBuckets {
			t.Errorf("index(%d) = %d after %d", v, i, prev)
		}
		prev = i
		if mid := histValue(i); math.Abs(float64(mid)-float64(v)) > float64(v)/256+1 {
			t.Errorf("value %d in bucket %d, whose middle is %d", v, i, mid)
		}
	}
	if histIndex(1<<40) != histBuckets-1 {
		t.Error("a value past the range does not land in the last bucket")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var a, b histogram
	if a.summary() != (Latency{}) {
		t.Errorf("empty: %+v", a.summary())
	}
	// 1..10000 µs, split across two histograms and merged.
	for i := 1; i <= 10000; i++ {
		h := &a
		if i%3 == 0 {
			h = &b
		}
		h.record(time.Duration(i) * time.Microsecond)
	}
	a.merge(&b)
	s := a.summary()
	if s.Samples != 10000 || s.Max != 10*time.Millisecond {
		t.Errorf("samples %d, max %s", s.Samples, s.Max)
	}
	for _, c := range []struct {
		got  time.Duration
		want float64 // µs
	}{{s.P50, 5000}, {s.P90, 9000}, {s.P99, 9900}} {
		if us := float64(c.got) / 1e3; math.Abs(us-c.want) > c.want*0.005 {
			t.Errorf("quantile %v, want %vµs ± 0.5%%", c.got, c.want)
		}
	}
}
