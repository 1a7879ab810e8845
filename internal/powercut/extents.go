package powercut

// span is the byte range [lo, hi) of a file.
type span struct{ lo, hi int64 }

// spans is a sorted set of disjoint, non-adjacent byte ranges.
type spans []span

// add returns s with [lo, hi) added.
func (s spans) add(lo, hi int64) spans {
	if lo >= hi {
		return s
	}
	out := make(spans, 0, len(s)+1)
	i := 0
	for ; i < len(s) && s[i].hi < lo; i++ {
		out = append(out, s[i])
	}
	for ; i < len(s) && s[i].lo <= hi; i++ {
		lo, hi = min(lo, s[i].lo), max(hi, s[i].hi)
	}
	out = append(out, span{lo, hi})
	return append(out, s[i:]...)
}

// missing returns the parts of [lo, hi) that s does not cover.
func (s spans) missing(lo, hi int64) []span {
	var out []span
	for _, r := range s {
		if lo >= hi {
			break
		}
		if r.hi <= lo {
			continue
		}
		if r.lo >= hi {
			break
		}
		if r.lo > lo {
			out = append(out, span{lo, r.lo})
		}
		lo = max(lo, r.hi)
	}
	if lo < hi {
		out = append(out, span{lo, hi})
	}
	return out
}

// total is the number of bytes s covers.
func (s spans) total() int64 {
	var n int64
	for _, r := range s {
		n += r.hi - r.lo
	}
	return n
}
