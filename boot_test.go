package inlet_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/inletdev/inlet"
)

// Boot: the acknowledged-mode sequence state of one (device, boot) (docs/protocol.md
// §2, De-duplication and Gaps).

type bootStep struct {
	seq     int64
	dup     bool
	gaps    int64
	missing int64
	ranges  []inlet.SeqRange // Missing after the step
	durable int64
}

func rng(from, to int64) inlet.SeqRange { return inlet.SeqRange{From: from, To: to} }

// checkBootInvariants checks what holds of any Boot: Missing sorted, disjoint,
// non-empty ranges within 1..Last-1, at most MaxMissingRanges of them, and
// Durable the seq below the first range (or Last).
func checkBootInvariants(t testing.TB, b *inlet.Boot) {
	t.Helper()
	if len(b.Missing) > inlet.MaxMissingRanges {
		t.Fatalf("%d missing ranges, more than MaxMissingRanges %d", len(b.Missing), inlet.MaxMissingRanges)
	}
	var prev int64
	var n int64
	for i, r := range b.Missing {
		if r.From < 1 || r.From > r.To || r.To >= b.Last || i > 0 && r.From <= prev+1 {
			t.Fatalf("bad missing range %d %v of %v (last %d)", i, r, b.Missing, b.Last)
		}
		prev = r.To
		n += r.To - r.From + 1
	}
	if got := b.MissingCount(); got != n {
		t.Fatalf("MissingCount %d, ranges %v hold %d", got, b.Missing, n)
	}
	want := b.Last
	if len(b.Missing) > 0 {
		want = b.Missing[0].From - 1
	}
	if got := b.Durable(); got != want {
		t.Fatalf("Durable %d, want %d (last %d, missing %v)", got, want, b.Last, b.Missing)
	}
	if b.Durable() < 0 || b.Durable() > b.Last {
		t.Fatalf("Durable %d outside 0..Last %d", b.Durable(), b.Last)
	}
}

func TestBootObserve(t *testing.T) {
	type S = bootStep
	max := int64(math.MaxInt64)
	tests := []struct {
		name  string
		steps []S
	}{
		{"first seq 1", []S{
			{seq: 1, durable: 1},
		}},
		{"jump, then fill from the bottom", []S{
			{seq: 1, durable: 1},
			{seq: 2, durable: 2},
			{seq: 5, gaps: 1, missing: 2, ranges: []inlet.SeqRange{rng(3, 4)}, durable: 2},
			{seq: 3, missing: -1, ranges: []inlet.SeqRange{rng(4, 4)}, durable: 3},
			{seq: 4, gaps: -1, missing: -1, durable: 5},
			{seq: 6, durable: 6},
		}},
		{"fill from the top", []S{
			{seq: 1, durable: 1},
			{seq: 5, gaps: 1, missing: 3, ranges: []inlet.SeqRange{rng(2, 4)}, durable: 1},
			{seq: 4, missing: -1, ranges: []inlet.SeqRange{rng(2, 3)}, durable: 1},
			{seq: 3, missing: -1, ranges: []inlet.SeqRange{rng(2, 2)}, durable: 1},
			{seq: 2, gaps: -1, missing: -1, durable: 5},
		}},
		{"fill in the middle splits a range", []S{
			{seq: 1, durable: 1},
			{seq: 10, gaps: 1, missing: 8, ranges: []inlet.SeqRange{rng(2, 9)}, durable: 1},
			{seq: 5, gaps: 1, missing: -1, ranges: []inlet.SeqRange{rng(2, 4), rng(6, 9)}, durable: 1},
			{seq: 7, gaps: 1, missing: -1, ranges: []inlet.SeqRange{rng(2, 4), rng(6, 6), rng(8, 9)}, durable: 1},
			{seq: 3, gaps: 1, missing: -1, ranges: []inlet.SeqRange{rng(2, 2), rng(4, 4), rng(6, 6), rng(8, 9)}, durable: 1},
			{seq: 9, missing: -1, ranges: []inlet.SeqRange{rng(2, 2), rng(4, 4), rng(6, 6), rng(8, 8)}, durable: 1},
			{seq: 6, gaps: -1, missing: -1, ranges: []inlet.SeqRange{rng(2, 2), rng(4, 4), rng(8, 8)}, durable: 1},
			{seq: 2, gaps: -1, missing: -1, ranges: []inlet.SeqRange{rng(4, 4), rng(8, 8)}, durable: 3},
			{seq: 4, gaps: -1, missing: -1, ranges: []inlet.SeqRange{rng(8, 8)}, durable: 7},
			{seq: 8, gaps: -1, missing: -1, durable: 10},
		}},
		{"several gaps, filled out of order", []S{
			{seq: 3, gaps: 1, missing: 2, ranges: []inlet.SeqRange{rng(1, 2)}, durable: 0},
			{seq: 6, gaps: 1, missing: 2, ranges: []inlet.SeqRange{rng(1, 2), rng(4, 5)}, durable: 0},
			{seq: 7, ranges: []inlet.SeqRange{rng(1, 2), rng(4, 5)}, durable: 0},
			{seq: 9, gaps: 1, missing: 1, ranges: []inlet.SeqRange{rng(1, 2), rng(4, 5), rng(8, 8)}, durable: 0},
			{seq: 8, gaps: -1, missing: -1, ranges: []inlet.SeqRange{rng(1, 2), rng(4, 5)}, durable: 0},
			{seq: 5, missing: -1, ranges: []inlet.SeqRange{rng(1, 2), rng(4, 4)}, durable: 0},
			{seq: 1, missing: -1, ranges: []inlet.SeqRange{rng(2, 2), rng(4, 4)}, durable: 1},
			{seq: 4, gaps: -1, missing: -1, ranges: []inlet.SeqRange{rng(2, 2)}, durable: 1},
			{seq: 2, gaps: -1, missing: -1, durable: 9},
		}},
		{"duplicates change nothing", []S{
			{seq: 1, durable: 1},
			{seq: 1, dup: true, durable: 1},
			{seq: 2, durable: 2},
			{seq: 1, dup: true, durable: 2},
			{seq: 2, dup: true, durable: 2},
			{seq: 6, gaps: 1, missing: 3, ranges: []inlet.SeqRange{rng(3, 5)}, durable: 2},
			{seq: 6, dup: true, ranges: []inlet.SeqRange{rng(3, 5)}, durable: 2},
			{seq: 2, dup: true, ranges: []inlet.SeqRange{rng(3, 5)}, durable: 2},
			{seq: 4, gaps: 1, missing: -1, ranges: []inlet.SeqRange{rng(3, 3), rng(5, 5)}, durable: 2},
			{seq: 4, dup: true, ranges: []inlet.SeqRange{rng(3, 3), rng(5, 5)}, durable: 2},
			{seq: 1, dup: true, ranges: []inlet.SeqRange{rng(3, 3), rng(5, 5)}, durable: 2},
			{seq: 6, dup: true, ranges: []inlet.SeqRange{rng(3, 3), rng(5, 5)}, durable: 2},
		}},
		{"first seq 5", []S{
			{seq: 5, gaps: 1, missing: 4, ranges: []inlet.SeqRange{rng(1, 4)}, durable: 0},
			{seq: 5, dup: true, ranges: []inlet.SeqRange{rng(1, 4)}, durable: 0},
			{seq: 1, missing: -1, ranges: []inlet.SeqRange{rng(2, 4)}, durable: 1},
		}},
		{"first seq 2^63-1", []S{
			{seq: max, gaps: 1, missing: max - 1, ranges: []inlet.SeqRange{rng(1, max-1)}, durable: 0},
			{seq: max, dup: true, ranges: []inlet.SeqRange{rng(1, max-1)}, durable: 0},
			{seq: max - 1, missing: -1, ranges: []inlet.SeqRange{rng(1, max-2)}, durable: 0},
			{seq: 1, missing: -1, ranges: []inlet.SeqRange{rng(2, max-2)}, durable: 1},
			{seq: max / 2, gaps: 1, missing: -1, ranges: []inlet.SeqRange{rng(2, max/2-1), rng(max/2+1, max-2)}, durable: 1},
			{seq: max - 2, missing: -1, ranges: []inlet.SeqRange{rng(2, max/2-1), rng(max/2+1, max-3)}, durable: 1},
		}},
		{"near 2^63-1", []S{
			{seq: max - 3, gaps: 1, missing: max - 4, ranges: []inlet.SeqRange{rng(1, max-4)}, durable: 0},
			{seq: max - 1, gaps: 1, missing: 1, ranges: []inlet.SeqRange{rng(1, max-4), rng(max-2, max-2)}, durable: 0},
			{seq: max, ranges: []inlet.SeqRange{rng(1, max-4), rng(max-2, max-2)}, durable: 0},
			{seq: max, dup: true, ranges: []inlet.SeqRange{rng(1, max-4), rng(max-2, max-2)}, durable: 0},
			{seq: max - 2, gaps: -1, missing: -1, ranges: []inlet.SeqRange{rng(1, max-4)}, durable: 0},
			{seq: max - 4, missing: -1, ranges: []inlet.SeqRange{rng(1, max-5)}, durable: 0},
		}},
		{"in order up to 2^63-1", []S{
			{seq: 1, durable: 1},
			{seq: max, gaps: 1, missing: max - 2, ranges: []inlet.SeqRange{rng(2, max-1)}, durable: 1},
			{seq: max - 1, missing: -1, ranges: []inlet.SeqRange{rng(2, max-2)}, durable: 1},
			{seq: 2, missing: -1, ranges: []inlet.SeqRange{rng(3, max-2)}, durable: 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &inlet.Boot{Device: "d", Boot: "b"}
			var stored int64
			for i, s := range tt.steps {
				before := *b
				before.Missing = slices.Clone(b.Missing)
				beforeCount := b.MissingCount()
				dup, gaps, missing := b.Observe(s.seq, int64(i+1))
				if dup != s.dup || gaps != s.gaps || missing != s.missing {
					t.Fatalf("step %d: Observe(%d) = %v, %d, %d; want %v, %d, %d", i, s.seq, dup, gaps, missing, s.dup, s.gaps, s.missing)
				}
				if !slices.Equal(b.Missing, s.ranges) && (len(b.Missing) > 0 || len(s.ranges) > 0) {
					t.Fatalf("step %d: Observe(%d): missing %v, want %v", i, s.seq, b.Missing, s.ranges)
				}
				if got := b.Durable(); got != s.durable {
					t.Fatalf("step %d: Observe(%d): Durable %d, want %d", i, s.seq, got, s.durable)
				}
				checkBootInvariants(t, b)
				if got := b.MissingCount() - beforeCount; got != missing {
					t.Fatalf("step %d: MissingCount changed by %d, Observe reported %d", i, got, missing)
				}
				if dup {
					if !slices.Equal(b.Missing, before.Missing) || b.Last != before.Last || b.Messages != before.Messages ||
						b.FirstSeen != before.FirstSeen || b.LastSeen != before.LastSeen {
						t.Fatalf("step %d: duplicate %d changed the boot: %+v -> %+v", i, s.seq, before, *b)
					}
					continue
				}
				stored++
				if b.Last != max64(before.Last, s.seq) {
					t.Fatalf("step %d: Last %d after %d, %d", i, b.Last, before.Last, s.seq)
				}
				if b.Messages != stored {
					t.Fatalf("step %d: Messages %d, want %d", i, b.Messages, stored)
				}
			}
		})
	}
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func TestBootInOrder(t *testing.T) {
	b := &inlet.Boot{}
	for n := int64(1); n <= 10000; n++ {
		dup, gaps, missing := b.Observe(n, n)
		if dup || gaps != 0 || missing != 0 || len(b.Missing) != 0 || b.Last != n || b.Durable() != n || b.MissingCount() != 0 {
			t.Fatalf("Observe(%d) = %v, %d, %d; last %d, durable %d, missing %v", n, dup, gaps, missing, b.Last, b.Durable(), b.Missing)
		}
	}
	if b.Messages != 10000 || b.FirstSeen != 1 || b.LastSeen != 10000 {
		t.Fatalf("messages %d, first %d, last %d", b.Messages, b.FirstSeen, b.LastSeen)
	}
}

func TestBootZeroValue(t *testing.T) {
	var b inlet.Boot
	if b.Durable() != 0 || b.MissingCount() != 0 {
		t.Fatalf("zero Boot: Durable %d, MissingCount %d", b.Durable(), b.MissingCount())
	}
}

func TestBootCounting(t *testing.T) {
	b := &inlet.Boot{}
	type want struct{ messages, first, last int64 }
	steps := []struct {
		seq, at int64
		dup     bool
		want    want
	}{
		{1, 100, false, want{1, 100, 100}},
		{1, 50, true, want{1, 100, 100}},   // a duplicate, even earlier, is not counted
		{1, 500, true, want{1, 100, 100}},  // nor later
		{4, 90, false, want{2, 90, 100}},   // an earlier time moves FirstSeen back
		{2, 200, false, want{3, 90, 200}},  // a fill counts
		{2, 10, true, want{3, 90, 200}},    // a duplicate fill does not
		{4, 1000, true, want{3, 90, 200}},  // nor a duplicate of Last
		{3, 150, false, want{4, 90, 200}},  // within the seen times
		{5, 200, false, want{5, 90, 200}},  // the same time as LastSeen
		{9, 0, false, want{6, 0, 200}},     // time 0 is a time
		{9, -5, true, want{6, 0, 200}},     // duplicate
		{7, 300, false, want{7, 0, 300}},   // a fill in the middle of 6..8
		{7, 400, true, want{7, 0, 300}},    // duplicate
		{6, 250, false, want{8, 0, 300}},   // fill
		{8, 250, false, want{9, 0, 300}},   // last fill
		{10, 250, false, want{10, 0, 300}}, // in order
	}
	for i, s := range steps {
		dup, _, _ := b.Observe(s.seq, s.at)
		got := want{b.Messages, b.FirstSeen, b.LastSeen}
		if dup != s.dup || got != s.want {
			t.Fatalf("step %d: Observe(%d, %d) = dup %v, counts %+v; want %v, %+v", i, s.seq, s.at, dup, got, s.dup, s.want)
		}
	}
	if b.Durable() != 10 || len(b.Missing) != 0 {
		t.Fatalf("Durable %d, missing %v", b.Durable(), b.Missing)
	}

	// The first message sets FirstSeen whatever its time.
	b = &inlet.Boot{}
	b.Observe(3, 42)
	if b.FirstSeen != 42 || b.LastSeen != 42 || b.Messages != 1 {
		t.Fatalf("first message: %+v", *b)
	}
}

// bootCapModel tracks what a Boot near its MaxMissingRanges cap must still get
// right, whatever it merges: the seqs really stored.
type bootCapModel struct {
	seen map[int64]bool
	last int64
}

// check checks the promise of the cap (see MaxMissingRanges): the ranges are
// bounded; every seq never received is still in a range (so a resend of it is
// stored: nothing is lost), and Durable never claims one; and a resend of a seq
// that a merge folded back into a range is not reported a duplicate (the store's
// unique key decides).
func (m *bootCapModel) check(t testing.TB, b *inlet.Boot, sumGaps int64) {
	t.Helper()
	checkBootInvariants(t, b)
	if b.Last != m.last {
		t.Fatalf("Last %d, want %d", b.Last, m.last)
	}
	if sumGaps != int64(len(b.Missing)) {
		t.Fatalf("gaps reported sum to %d, but %d ranges are kept", sumGaps, len(b.Missing))
	}
	firstUnseen := m.last + 1
	for s := int64(1); s <= m.last; s++ {
		if !m.seen[s] {
			firstUnseen = s
			break
		}
	}
	if b.Durable() >= firstUnseen {
		t.Fatalf("Durable %d, but seq %d was never received", b.Durable(), firstUnseen)
	}
	i := 0
	for s := int64(1); s <= m.last; s++ {
		for i < len(b.Missing) && b.Missing[i].To < s {
			i++
		}
		in := i < len(b.Missing) && b.Missing[i].From <= s
		if !m.seen[s] && !in {
			t.Fatalf("seq %d was never received but is in no missing range", s)
		}
	}
}

func (m *bootCapModel) observe(t testing.TB, b *inlet.Boot, s int64, sumGaps *int64) (dup bool) {
	t.Helper()
	inRange := false
	for _, r := range b.Missing {
		if r.From <= s && s <= r.To {
			inRange = true
		}
	}
	dup, gaps, _ := b.Observe(s, 1)
	switch {
	case !m.seen[s] && dup:
		t.Fatalf("Observe(%d): never received, but reported a duplicate: it would be lost", s)
	case inRange && dup:
		t.Fatalf("Observe(%d): in missing range, but reported a duplicate", s)
	case s > m.last && dup:
		t.Fatalf("Observe(%d) above Last %d reported a duplicate", s, m.last)
	}
	*sumGaps += gaps
	m.seen[s] = true
	m.last = max64(m.last, s)
	m.check(t, b, *sumGaps)
	return dup
}

func TestBootMaxMissingRanges(t *testing.T) {
	const n = 1100
	b := &inlet.Boot{}
	m := &bootCapModel{seen: map[int64]bool{}}
	var sumGaps int64
	// 2, 4, 6, ...: every odd seq is missing, each its own range.
	for k := int64(1); k <= n; k++ {
		gapsBefore := len(b.Missing)
		m.observe(t, b, 2*k, &sumGaps)
		if k <= inlet.MaxMissingRanges && len(b.Missing) != gapsBefore+1 {
			t.Fatalf("seq %d: %d ranges, want %d", 2*k, len(b.Missing), gapsBefore+1)
		}
	}
	if len(b.Missing) != inlet.MaxMissingRanges {
		t.Fatalf("%d ranges after %d gaps, want MaxMissingRanges", len(b.Missing), n)
	}
	// The oldest were merged: the first range now spans 1 to 2*(n-1024+1)-1,
	// holding stored even seqs again.
	merged := n - inlet.MaxMissingRanges + 1
	if want := rng(1, int64(2*merged-1)); b.Missing[0] != want {
		t.Fatalf("first range %v, want %v", b.Missing[0], want)
	}
	if want := rng(2*n-1, 2*n-1); b.Missing[len(b.Missing)-1] != want {
		t.Fatalf("last range %v, want %v", b.Missing[len(b.Missing)-1], want)
	}
	if b.Durable() != 0 {
		t.Fatalf("Durable %d, want 0", b.Durable())
	}

	// A resend of a stored seq inside the merged region is not reported a
	// duplicate (the store's unique key will decide); one above it still is.
	if !m.seen[4] || m.observe(t, b, 4, &sumGaps) {
		t.Fatalf("resend of 4, merged back into a range, reported dup")
	}
	if s := int64(2*merged + 2); !m.observe(t, b, s, &sumGaps) {
		t.Fatalf("resend of %d, outside any range, not reported dup", s)
	}

	// Filling the middle of ranges at the cap must not grow them past it, nor
	// may new gaps after that.
	next := int64(2*n + 1)
	for i := range 300 {
		// A fill strictly inside the first (merged) range.
		r := b.Missing[0]
		if r.To-r.From >= 2 {
			m.observe(t, b, r.From+1+int64(i)%(r.To-r.From-1), &sumGaps)
		}
		// A seq making a new gap of 3, and one in its middle.
		next += 4
		m.observe(t, b, next, &sumGaps)
		m.observe(t, b, next-2, &sumGaps)
	}
	// Every seq never received can still be stored.
	for s := int64(1); s <= m.last; s++ {
		if !m.seen[s] {
			m.observe(t, b, s, &sumGaps)
		}
	}
	// What then remains missing are stored seqs that merges folded back into a
	// range: the counts blur, and Durable stays below them until they are resent
	// (each is then not a duplicate, for the store to decide).
	if len(b.Missing) == 0 {
		t.Fatalf("no range left, yet merges folded stored seqs into one")
	}
	for len(b.Missing) > 0 {
		if m.observe(t, b, b.Missing[0].From, &sumGaps) {
			t.Fatalf("resend of %d in %v reported dup", b.Missing[0].From, b.Missing[0])
		}
	}
	if b.Durable() != m.last {
		t.Fatalf("all resent: Durable %d, last %d", b.Durable(), m.last)
	}
}

// TestBootCapRandom drives a Boot far past its cap with random gaps, fills and
// resends, and checks the cap's promise after every step.
func TestBootCapRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for run := range 2 {
		b := &inlet.Boot{}
		m := &bootCapModel{seen: map[int64]bool{}}
		var sumGaps int64
		for range 4000 {
			var s int64
			switch k := r.IntN(10); {
			case k < 5 || m.last == 0:
				s = m.last + 2 + r.Int64N(3) // a new gap
			case k < 8:
				s = 1 + r.Int64N(m.last) // anything below: a fill or a resend
			default:
				if len(b.Missing) == 0 {
					continue
				}
				rg := b.Missing[r.IntN(len(b.Missing))]
				s = rg.From + r.Int64N(rg.To-rg.From+1) // inside a range
			}
			m.observe(t, b, s, &sumGaps)
		}
		if t.Failed() {
			t.Fatalf("run %d", run)
		}
	}
}

// bootModel is a set of the seqs seen.
type bootModel struct {
	seen map[int64]bool
	last int64
}

func (m *bootModel) ranges() []inlet.SeqRange {
	var rs []inlet.SeqRange
	for s := int64(1); s <= m.last; s++ {
		if m.seen[s] {
			continue
		}
		if n := len(rs); n > 0 && rs[n-1].To == s-1 {
			rs[n-1].To = s
		} else {
			rs = append(rs, rng(s, s))
		}
	}
	return rs
}

func (m *bootModel) durable() int64 {
	for s := int64(1); s <= m.last; s++ {
		if !m.seen[s] {
			return s - 1
		}
	}
	return m.last
}

// TestBootMatchesModel checks Boot against a set of the seqs seen, over random
// sequences with repeats and jumps, well below the cap on ranges.
func TestBootMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for run := range 250 {
		b := &inlet.Boot{}
		m := &bootModel{seen: map[int64]bool{}}
		var messages int64
		var history []int64
		n := 1 + r.IntN(400)
		for i := range n {
			var s int64
			switch k := r.IntN(10); {
			case k < 3:
				s = m.last + 1 // in order
			case k < 5:
				s = m.last + 1 + r.Int64N(20) // a jump
			case k < 6 && len(history) > 0:
				s = history[r.IntN(len(history))] // a repeat
			case k < 7:
				s = max64(1, m.last-r.Int64N(5)) // just below Last
			default:
				s = 1 + r.Int64N(300)
			}
			s = min(max(s, 1), 300)
			history = append(history, s)
			at := int64(r.IntN(1000))

			wantDup := m.seen[s]
			gapsBefore, countBefore := int64(len(b.Missing)), b.MissingCount()
			before := *b
			dup, gaps, missing := b.Observe(s, at)
			if !wantDup {
				m.seen[s] = true
				m.last = max64(m.last, s)
				messages++
			}
			where := fmt.Sprintf("run %d step %d: Observe(%d) after %v", run, i, s, history[:len(history)-1])
			if dup != wantDup {
				t.Fatalf("%s: dup %v, want %v", where, dup, wantDup)
			}
			if want := m.ranges(); !slices.Equal(b.Missing, want) {
				t.Fatalf("%s: missing %v, want %v", where, b.Missing, want)
			}
			checkBootInvariants(t, b)
			if gaps != int64(len(b.Missing))-gapsBefore || missing != b.MissingCount()-countBefore {
				t.Fatalf("%s: reported gaps %+d, missing %+d; ranges went %d -> %d, count %d -> %d",
					where, gaps, missing, gapsBefore, len(b.Missing), countBefore, b.MissingCount())
			}
			if b.Durable() != m.durable() || b.Durable() != min(m.durable(), m.last) {
				t.Fatalf("%s: Durable %d, want %d", where, b.Durable(), m.durable())
			}
			if b.Last != m.last || b.Messages != messages {
				t.Fatalf("%s: Last %d, Messages %d; want %d, %d", where, b.Last, b.Messages, m.last, messages)
			}
			if dup && (b.FirstSeen != before.FirstSeen || b.LastSeen != before.LastSeen) {
				t.Fatalf("%s: a duplicate moved FirstSeen/LastSeen", where)
			}
			if !dup && (b.FirstSeen > at || b.LastSeen < at) {
				t.Fatalf("%s: at %d outside FirstSeen %d .. LastSeen %d", where, at, b.FirstSeen, b.LastSeen)
			}
		}
	}
}
