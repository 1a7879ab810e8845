package inlet_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/inletdev/inlet"
)

// counts is a device's loss accounting after a sequence of counter values.
type counts struct {
	Gaps, Missing, Duplicates, Resets int64
	High, Low                         int64
}

func (c counts) String() string {
	return fmt.Sprintf("gaps=%d missing=%d dups=%d resets=%d run=[%d,%d]",
		c.Gaps, c.Missing, c.Duplicates, c.Resets, c.Low, c.High)
}

func countsOf(d *inlet.Device) counts {
	return counts{d.Gaps, d.Missing, d.Duplicates, d.Resets, d.Run.High, d.Run.Low}
}

// observe feeds counter values to a new device, one message each.
func observe(values ...int64) *inlet.Device {
	d := &inlet.Device{ID: "dev"}
	for i, v := range values {
		d.Observe(&inlet.Message{ReceivedAt: int64(i + 1), Device: "dev", Counter: v, IsCounter: true})
	}
	return d
}

// seq returns from, from+1, ..., to; to may be math.MaxInt64.
func seq(from, to int64) []int64 {
	var s []int64
	for v := from; v <= to; v++ {
		s = append(s, v)
		if v == to {
			break
		}
	}
	return s
}

// cat joins sequences and values.
func cat(parts ...any) []int64 {
	var s []int64
	for _, p := range parts {
		switch p := p.(type) {
		case []int64:
			s = append(s, p...)
		case int:
			s = append(s, int64(p))
		case int64:
			s = append(s, p)
		default:
			panic(fmt.Sprintf("cat: %T", p))
		}
	}
	return s
}

const (
	maxI = math.MaxInt64
	minI = math.MinInt64
)

func TestDeviceCounterAccounting(t *testing.T) {
	for _, c := range []struct {
		name   string
		values []int64
		want   counts
	}{
		{"first value", cat(42), counts{High: 42, Low: 42}},
		{"clean 1..100", seq(1, 100), counts{High: 100, Low: 1}},
		{"one missing", cat(1, 2, 4), counts{Gaps: 1, Missing: 1, High: 4, Low: 1}},
		{"late arrival fills", cat(1, 2, 4, 3), counts{High: 4, Low: 1}},
		{"missing range", cat(1, 5), counts{Gaps: 1, Missing: 3, High: 5, Low: 1}},
		{"late arrival splits a range", cat(1, 5, 3), counts{Gaps: 2, Missing: 2, High: 5, Low: 1}},
		{"late arrivals fill a split range", cat(1, 5, 3, 2, 4), counts{High: 5, Low: 1}},
		{"late arrival at the top of a range", cat(1, 5, 4), counts{Gaps: 1, Missing: 2, High: 5, Low: 1}},
		{"late arrival at the bottom of a range", cat(1, 5, 2), counts{Gaps: 1, Missing: 2, High: 5, Low: 1}},
		{"two ranges", cat(1, 3, 5), counts{Gaps: 2, Missing: 2, High: 5, Low: 1}},
		{"duplicate", cat(1, 2, 2), counts{Duplicates: 1, High: 2, Low: 1}},
		{"duplicate of the first", cat(7, 7), counts{Duplicates: 1, High: 7, Low: 7}},
		{"duplicate of the highest", cat(seq(1, 10), 10), counts{Duplicates: 1, High: 10, Low: 1}},
		{"duplicate within the run", cat(seq(1, 10), 5), counts{Duplicates: 1, High: 10, Low: 1}},
		{"duplicate of the lowest", cat(seq(1, 10), 1), counts{Duplicates: 1, High: 10, Low: 1}},
		{"duplicate of a late arrival", cat(1, 2, 4, 3, 3), counts{Duplicates: 1, High: 4, Low: 1}},
		{"reset", cat(seq(1, 100), 1), counts{Resets: 1, High: 1, Low: 1}},
		{"reset then a new run", cat(seq(1, 100), seq(1, 50)), counts{Resets: 1, High: 50, Low: 1}},
		{"exactly 16 below highest is a duplicate", cat(seq(1, 100), 84), counts{Duplicates: 1, High: 100, Low: 1}},
		{"17 below highest is a reset", cat(seq(1, 100), 83), counts{Resets: 1, High: 83, Low: 83}},
		{"exactly 16 below highest is a late arrival", cat(seq(1, 83), seq(85, 100), 84), counts{High: 100, Low: 1}},
		{"17 below highest, unseen, is still a reset", cat(seq(1, 82), seq(84, 100), 83),
			counts{Gaps: 1, Missing: 1, Resets: 1, High: 83, Low: 83}},
		{"downward extension", cat(5, 4), counts{High: 5, Low: 4}},
		{"downward extension, one missing", cat(10, 8), counts{Gaps: 1, Missing: 1, High: 10, Low: 8}},
		{"downward extension, filled", cat(10, 8, 9), counts{High: 10, Low: 8}},
		{"downward extension by 16", cat(100, 84), counts{Gaps: 1, Missing: 15, High: 100, Low: 84}},
		{"downward by 17 is a reset", cat(100, 83), counts{Resets: 1, High: 83, Low: 83}},
		{"downward extension below a missing range", cat(10, 12, 8), counts{Gaps: 2, Missing: 2, High: 12, Low: 8}},
		{"downward extensions, all filled", cat(10, 12, 8, 11, 9), counts{High: 12, Low: 8}},
		{"downward extension, then duplicate of the new low", cat(10, 8, 8), counts{Gaps: 1, Missing: 1, Duplicates: 1, High: 10, Low: 8}},
		{"jump by 63", cat(1, 64, 63), counts{Gaps: 1, Missing: 61, High: 64, Low: 1}},
		{"jump by 64", cat(1, 65, 64), counts{Gaps: 1, Missing: 62, High: 65, Low: 1}},
		{"jump by 65", cat(1, 66, 65), counts{Gaps: 1, Missing: 63, High: 66, Low: 1}},
		{"jump over 64 then late arrivals", cat(1, 100, 90, 85, 84),
			counts{Gaps: 3, Missing: 95, High: 100, Low: 1}},
		{"jump over 64 then the 64-bit window", cat(seq(1, 10), 200, 199, 184),
			counts{Gaps: 2, Missing: 187, High: 200, Low: 1}},
		{"jump over 64 then reset keeps the gaps", cat(1, 100, 90, 85, 84, 83),
			counts{Gaps: 3, Missing: 95, Resets: 1, High: 83, Low: 83}},
		{"reset keeps old missing", cat(seq(1, 10), seq(12, 50), 1, 2, 3),
			counts{Gaps: 1, Missing: 1, Resets: 1, High: 3, Low: 1}},
		{"values near the bottom of a run are duplicates, not resets", cat(1, 3, 1, 4, 1, 2, 5),
			counts{Duplicates: 2, High: 5, Low: 1}},
		{"missing over resets", cat(seq(1, 30), 40, 1, 5, 100, 20),
			counts{Gaps: 3, Missing: 9 + 3 + 94, Resets: 2, High: 20, Low: 20}},
		{"negative values", cat(-5, -3, -4, -2), counts{High: -2, Low: -5}},
		{"through zero", seq(-10, 10), counts{High: 10, Low: -10}},
		{"near max", cat(maxI-2, maxI), counts{Gaps: 1, Missing: 1, High: maxI, Low: maxI - 2}},
		{"near max, filled", cat(maxI-2, maxI, maxI-1, maxI), counts{Duplicates: 1, High: maxI, Low: maxI - 2}},
		{"near min", cat(minI+2, minI, minI+1), counts{High: minI + 2, Low: minI}},
		{"min to max saturates", cat(minI, maxI), counts{Gaps: 1, Missing: maxI, High: maxI, Low: minI}},
		{"max to min resets", cat(maxI, minI), counts{Resets: 1, High: minI, Low: minI}},
		{"missing stays saturated", cat(minI, maxI, minI, maxI), counts{Gaps: 2, Missing: maxI, Resets: 1, High: maxI, Low: minI}},
		{"zero to max", cat(0, maxI), counts{Gaps: 1, Missing: maxI - 1, High: maxI, Low: 0}},
		{"min to zero", cat(minI, 0), counts{Gaps: 1, Missing: maxI, High: 0, Low: minI}},
		{"min to -1", cat(minI, -1), counts{Gaps: 1, Missing: maxI - 1, High: -1, Low: minI}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := observe(c.values...)
			if got := countsOf(d); got != c.want {
				t.Errorf("after %v:\n got %v\nwant %v", short(c.values), got, c.want)
			}
			if d.Messages != int64(len(c.values)) {
				t.Errorf("Messages = %d, want %d", d.Messages, len(c.values))
			}
			if hi, ok := d.LastCounter(); !ok || hi != c.want.High {
				t.Errorf("LastCounter = %d, %v; want %d, true", hi, ok, c.want.High)
			}
			// Where the values are few and near each other, the model agrees.
			if lo, hi := bounds(c.values); lo > minI/2 && hi < maxI/2 && hi-lo < 1000 {
				var m runModel
				for _, v := range c.values {
					m.observe(v)
				}
				if got := m.counts(); got != c.want {
					t.Errorf("the model disagrees with the table: %v", got)
				}
			}
		})
	}
}

func short(v []int64) string {
	if len(v) > 20 {
		return fmt.Sprintf("%v ... %v (%d values)", v[:8], v[len(v)-8:], len(v))
	}
	return fmt.Sprint(v)
}

func bounds(v []int64) (lo, hi int64) {
	lo, hi = maxI, minI
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

func TestCounterRunKinds(t *testing.T) {
	var r inlet.CounterRun
	for i, step := range []struct {
		v int64
		o inlet.Observation
	}{
		{10, inlet.Observation{Kind: inlet.First}},
		{11, inlet.Observation{Kind: inlet.Next}},
		{15, inlet.Observation{Kind: inlet.Jump, Missing: 3, Gaps: 1}},
		{13, inlet.Observation{Kind: inlet.Late, Missing: -1, Gaps: 1}},  // splits 12..14
		{12, inlet.Observation{Kind: inlet.Late, Missing: -1, Gaps: -1}}, // the whole range 12
		{14, inlet.Observation{Kind: inlet.Late, Missing: -1, Gaps: -1}}, // the whole range 14
		{13, inlet.Observation{Kind: inlet.Duplicate}},                   // seen
		{8, inlet.Observation{Kind: inlet.Late, Missing: 1, Gaps: 1}},    // extends down, 9 missing
		{7, inlet.Observation{Kind: inlet.Late}},                         // extends down by one
		{9, inlet.Observation{Kind: inlet.Late, Missing: -1, Gaps: -1}},  // fills 9
		{20, inlet.Observation{Kind: inlet.Jump, Missing: 4, Gaps: 1}},   // 16..19
		{19, inlet.Observation{Kind: inlet.Late, Missing: -1}},           // top of 16..19
		{16, inlet.Observation{Kind: inlet.Late, Missing: -1}},           // bottom of 16..18
		{3, inlet.Observation{Kind: inlet.Reset}},                        // 17 below 20
		{3, inlet.Observation{Kind: inlet.Duplicate}},                    // the new run has it
		{4, inlet.Observation{Kind: inlet.Next}},                         // and goes on
		{maxI, inlet.Observation{Kind: inlet.Jump, Missing: maxI - 5, Gaps: 1}},
	} {
		if o := r.Observe(step.v); o != step.o {
			t.Fatalf("step %d: Observe(%d) = %+v, want %+v", i, step.v, o, step.o)
		}
	}
}

func TestDeviceObserve(t *testing.T) {
	d := &inlet.Device{ID: "dev"}
	msg := func(at int64, payload string) *inlet.Message {
		return &inlet.Message{ReceivedAt: at, Device: "dev", Payload: []byte(payload)}
	}
	counter := func(at, v int64) *inlet.Message {
		m := msg(at, fmt.Sprint(v))
		m.Counter, m.IsCounter = v, true
		return m
	}

	d.Observe(msg(1000, "temp=21.5"))
	if d.Messages != 1 || d.FirstSeen != 1000 || d.LastSeen != 1000 {
		t.Fatalf("after one message: %+v", d)
	}
	if _, ok := d.LastCounter(); ok || d.Run.Active {
		t.Fatalf("a non-counter message started a counter run: %+v", d.Run)
	}

	d.Observe(counter(2000, 1))
	d.Observe(counter(1500, 3)) // received out of order in time: the queue's clock is not monotonic across producers
	d.Observe(msg(3000, "hello"))
	d.Observe(msg(500, "early"))
	if d.Messages != 5 {
		t.Errorf("Messages = %d, want 5", d.Messages)
	}
	if d.FirstSeen != 500 || d.LastSeen != 3000 {
		t.Errorf("FirstSeen, LastSeen = %d, %d; want 500, 3000", d.FirstSeen, d.LastSeen)
	}
	if got, want := countsOf(d), (counts{Gaps: 1, Missing: 1, High: 3, Low: 1}); got != want {
		t.Errorf("counts = %v, want %v", got, want)
	}
	if hi, ok := d.LastCounter(); !ok || hi != 3 {
		t.Errorf("LastCounter = %d, %v; want 3, true", hi, ok)
	}

	// Non-counter messages change nothing but the message count and times,
	// whatever their payload looks like.
	before := *d
	for i := range 100 {
		d.Observe(msg(int64(2000+i), "1"))
	}
	before.Messages += 100
	if *d != before {
		t.Errorf("non-counter messages changed the accounting:\n got %+v\nwant %+v", *d, before)
	}
}

func TestDeviceFirstSeenOfFirstMessage(t *testing.T) {
	// The first message sets FirstSeen whatever the zero value holds.
	d := &inlet.Device{ID: "dev"}
	d.Observe(&inlet.Message{ReceivedAt: 5_000})
	d.Observe(&inlet.Message{ReceivedAt: 7_000})
	if d.FirstSeen != 5_000 || d.LastSeen != 7_000 {
		t.Errorf("FirstSeen, LastSeen = %d, %d; want 5000, 7000", d.FirstSeen, d.LastSeen)
	}
}

// runModel is the obvious reading of docs/protocol.md §3 with a set of the values seen
// in the current run, for runs spanning a modest range of values.
type runModel struct {
	active           bool
	low, high        int64
	seen             map[int64]bool
	oldGaps, oldMiss int64 // of the runs before the last reset
	dups, resets     int64
}

func (m *runModel) start(v int64) {
	m.active, m.low, m.high, m.seen = true, v, v, map[int64]bool{v: true}
}

func (m *runModel) observe(v int64) {
	switch {
	case !m.active:
		m.start(v)
	case v > m.high:
		m.high = v
		m.seen[v] = true
	case m.high-v <= inlet.Window:
		if m.seen[v] {
			m.dups++
			return
		}
		m.seen[v] = true
		m.low = min(m.low, v)
	default:
		g, n := m.runGaps()
		m.oldGaps += g
		m.oldMiss += n
		m.resets++
		m.start(v)
	}
}

// runGaps counts the missing ranges and values of the current run.
func (m *runModel) runGaps() (gaps, missing int64) {
	in := false
	for v := m.low; v <= m.high; v++ {
		if !m.seen[v] {
			missing++
			if !in {
				gaps++
			}
		}
		in = !m.seen[v]
	}
	return gaps, missing
}

func (m *runModel) counts() counts {
	g, n := m.runGaps()
	return counts{m.oldGaps + g, m.oldMiss + n, m.dups, m.resets, m.high, m.low}
}

// TestDeviceLateArrivalsWithinWindow delivers every value of base+1..base+N once,
// shuffled so that each arrives no more than Window below the highest value so
// far: every straggler fills its slot and the device ends with nothing missing.
func TestDeviceLateArrivalsWithinWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		n := 1 + rng.IntN(300)
		base := []int64{0, -150, 1 << 40, maxI - int64(n), minI}[iter%5]
		pending := seq(base+1, base+int64(n)) // ascending; pending[0] is the lowest not yet sent
		var sent []int64
		d := &inlet.Device{ID: "dev"}
		var m runModel
		for len(pending) > 0 {
			// Any pending value within Window of the lowest pending one keeps every
			// later value within Window of the highest.
			w := 0
			for w < len(pending) && pending[w]-pending[0] <= inlet.Window {
				w++
			}
			k := rng.IntN(w)
			if rng.IntN(3) == 0 {
				k = 0 // in order, now and then
			}
			v := pending[k]
			pending = append(pending[:k], pending[k+1:]...)
			sent = append(sent, v)
			d.Observe(&inlet.Message{ReceivedAt: int64(len(sent)), Counter: v, IsCounter: true})
			if base > minI/2 && base < maxI/2 {
				m.observe(v)
				if got, want := countsOf(d), m.counts(); got != want {
					t.Fatalf("iter %d after %v: got %v, model %v", iter, short(sent), got, want)
				}
			}
		}
		want := counts{High: base + int64(n), Low: base + 1}
		if got := countsOf(d); got != want {
			t.Fatalf("iter %d, values %v: got %v, want %v", iter, short(sent), got, want)
		}
	}
}

// TestDeviceDroppedInOrder drops a random subset of 1..N sent in order: the device
// counts each dropped value as missing and each maximal dropped range as one gap,
// except those before the first and after the last received value (a device
// cannot know about them).
func TestDeviceDroppedInOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := range 2000 {
		n := int64(1 + rng.IntN(1000))
		// Drops come in runs of random length, some longer than the 64-bit window.
		dropP := []float64{0.01, 0.1, 0.5, 0.9}[iter%4]
		var got []int64
		dropped := make([]bool, n+1)
		for v := int64(1); v <= n; {
			if rng.Float64() < dropP {
				k := int64(1 + rng.IntN([]int{1, 3, 20, 100}[rng.IntN(4)]))
				for ; k > 0 && v <= n; k-- {
					dropped[v] = true
					v++
				}
				continue
			}
			got = append(got, v)
			v++
		}
		d := observe(got...)
		var want counts
		if len(got) > 0 {
			first, last := got[0], got[len(got)-1]
			want.Low, want.High = first, last
			for v := first; v <= last; v++ {
				if dropped[v] {
					want.Missing++
					if !dropped[v-1] {
						want.Gaps++
					}
				}
			}
		}
		if c := countsOf(d); c != want {
			t.Fatalf("iter %d, received %v: got %v, want %v", iter, short(got), c, want)
		}
	}
}

// TestDeviceMatchesModel feeds random mixes of next values, jumps, late arrivals,
// duplicates and resets, and checks the device against the model after each one.
func TestDeviceMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for iter := range 3000 {
		d := &inlet.Device{ID: "dev"}
		var m runModel
		var sent []int64
		v := int64(rng.IntN(100)) - 50
		for range 1 + rng.IntN(200) {
			hi := m.high
			switch r := rng.IntN(100); {
			case !m.active:
			case r < 40:
				v = hi + 1
			case r < 55:
				v = hi + 2 + int64(rng.IntN(80)) // jumps, some past the 64-bit window
			case r < 85:
				v = hi - int64(rng.IntN(inlet.Window+1)) // late or duplicate, up to the edge
			case r < 92:
				v = hi - inlet.Window - 1 - int64(rng.IntN(3)) // just past the window: reset
			default:
				v = int64(rng.IntN(200)) - 100 // anywhere
			}
			sent = append(sent, v)
			d.Observe(&inlet.Message{ReceivedAt: int64(len(sent)), Counter: v, IsCounter: true})
			m.observe(v)
			if got, want := countsOf(d), m.counts(); got != want {
				t.Fatalf("iter %d after %v: got %v, model %v", iter, sent, got, want)
			}
		}
	}
}
