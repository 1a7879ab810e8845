package inlet

import "sort"

// Acker is told, after the batch holding a message has committed, that the
// message is durable; for an acknowledged duplicate, that its original is.
type Acker interface {
	Acked(seq int64)
}

// SeqRange is an inclusive range of sequence numbers.
type SeqRange struct{ From, To int64 }

// MaxMissingRanges bounds the missing ranges kept per boot. Past it the two
// oldest are merged: the seqs between them count as missing again, and a resend
// of one of them is stored once more only if the store has not got it (its unique
// key decides), so nothing is lost or duplicated, only the counts blur.
const MaxMissingRanges = 1024

// Boot is the acknowledged-mode sequence state of one (device, boot): the
// highest seq stored and the ranges below it never received (docs/protocol.md §2).
type Boot struct {
	Device    string
	Boot      string
	Last      int64      // highest seq stored; 0 if none
	Missing   []SeqRange // sorted, disjoint, all below Last
	Messages  int64
	FirstSeen int64
	LastSeen  int64
}

// Durable is what the server reports as last= in its hello answer: the highest
// seq below which nothing is missing. It is Last unless a range is missing, so a
// device never drops from its outbox a message the server lacks (see
// docs/protocol.md on why this is not simply Last).
func (b *Boot) Durable() int64 {
	if len(b.Missing) > 0 {
		return b.Missing[0].From - 1
	}
	return b.Last
}

// MissingCount is the number of seqs in the missing ranges.
func (b *Boot) MissingCount() int64 {
	var n int64
	for _, r := range b.Missing {
		n += r.To - r.From + 1
	}
	return n
}

// Observe accounts for seq arriving at time at. It reports whether seq is a
// duplicate (already stored: not to be stored again), and the change in the
// number of missing ranges and missing seqs.
func (b *Boot) Observe(seq, at int64) (dup bool, gaps, missing int64) {
	if seq > b.Last {
		if seq > b.Last+1 {
			b.Missing = append(b.Missing, SeqRange{b.Last + 1, seq - 1})
			gaps, missing = 1-b.bound(), seq-b.Last-1
		}
		b.Last = seq
		b.count(at)
		return false, gaps, missing
	}
	i := sort.Search(len(b.Missing), func(i int) bool { return b.Missing[i].To >= seq })
	if i == len(b.Missing) || b.Missing[i].From > seq {
		return true, 0, 0
	}
	r := &b.Missing[i]
	switch {
	case r.From == r.To:
		b.Missing = append(b.Missing[:i], b.Missing[i+1:]...)
		gaps = -1
	case seq == r.From:
		r.From++
	case seq == r.To:
		r.To--
	default:
		upper := SeqRange{seq + 1, r.To}
		r.To = seq - 1
		b.Missing = append(b.Missing, SeqRange{})
		copy(b.Missing[i+2:], b.Missing[i+1:])
		b.Missing[i+1] = upper
		gaps = 1 - b.bound()
	}
	b.count(at)
	return false, gaps, -1
}

// bound merges the two oldest missing ranges if there are more than
// MaxMissingRanges, after a new gap or a split, and reports how many ranges it
// removed (0 or 1).
func (b *Boot) bound() int64 {
	if len(b.Missing) <= MaxMissingRanges {
		return 0
	}
	b.Missing[1].From = b.Missing[0].From
	b.Missing = b.Missing[1:]
	return 1
}

func (b *Boot) count(at int64) {
	if b.Messages == 0 || at < b.FirstSeen {
		b.FirstSeen = at
	}
	if at > b.LastSeen {
		b.LastSeen = at
	}
	b.Messages++
}
