package inlet

// Device is the loss accounting the server keeps per device (PROTOCOL.md §3). It is
// updated by the commit writer in the same transaction as the messages it counts,
// so the two never disagree after a crash.
type Device struct {
	ID         string
	Messages   int64
	FirstSeen  int64 // unix nanoseconds
	LastSeen   int64 // unix nanoseconds
	Gaps       int64 // separate ranges of counter values never received
	Missing    int64 // counter values never received, over all runs
	Duplicates int64
	Resets     int64
	Run        CounterRun
	LastBoot   string // acknowledged mode: the boot of the latest new sequence
}

// Observe accounts for one message of the device.
func (d *Device) Observe(m *Message) {
	switch {
	case d.Messages == 0:
		d.FirstSeen, d.LastSeen = m.ReceivedAt, m.ReceivedAt
	case m.ReceivedAt < d.FirstSeen:
		d.FirstSeen = m.ReceivedAt
	case m.ReceivedAt > d.LastSeen:
		d.LastSeen = m.ReceivedAt
	}
	d.Messages++
	if !m.IsCounter || m.Seq != 0 {
		return // acknowledged messages are tracked by their seq (Boot), not payload
	}
	switch o := d.Run.Observe(m.Counter); o.Kind {
	case Duplicate:
		d.Duplicates++
	case Reset:
		d.Resets++
	default:
		d.Missing = satAdd(d.Missing, o.Missing)
		d.Gaps += o.Gaps
	}
}

// LastCounter is the highest value of the current counter run, and whether there is one.
func (d *Device) LastCounter() (int64, bool) { return d.Run.High, d.Run.Active }

// Window is how far below the highest counter value a message is still taken as a
// late arrival rather than a reset (PROTOCOL.md §3).
const Window = 16

// CounterRun follows the current run of a device's counter values: the range from
// its lowest to its highest value so far, and which of the values near the top of
// that range have been seen, so late arrivals can fill their slots.
type CounterRun struct {
	Active bool
	Low    int64
	High   int64
	// Seen has bit i set when the value High-i has been received (i < 64).
	Seen uint64
}

// ObservationKind classifies one counter value against the run.
type ObservationKind uint8

const (
	First     ObservationKind = iota + 1 // the device's first counter value
	Next                                 // highest+1
	Jump                                 // above highest+1: a missing range opens
	Late                                 // within the window below highest, not yet seen
	Duplicate                            // already seen in this run
	Reset                                // more than Window below highest: a new run
)

// Observation is the effect of one value: its kind and the change it makes to the
// device's missing total and gap count (negative when a late arrival fills a slot).
type Observation struct {
	Kind    ObservationKind
	Missing int64
	Gaps    int64
}

// Observe updates the run with value v.
func (r *CounterRun) Observe(v int64) Observation {
	if !r.Active {
		*r = CounterRun{Active: true, Low: v, High: v, Seen: 1}
		return Observation{Kind: First}
	}
	if v > r.High {
		d := uint64(v) - uint64(r.High) // exact: v > High
		if d >= 64 {
			r.Seen = 1
		} else {
			r.Seen = r.Seen<<d | 1
		}
		r.High = v
		if d == 1 {
			return Observation{Kind: Next}
		}
		return Observation{Kind: Jump, Missing: clampInt64(d - 1), Gaps: 1}
	}
	below := uint64(r.High) - uint64(v) // exact: v <= High
	if below > Window {
		*r = CounterRun{Active: true, Low: v, High: v, Seen: 1}
		return Observation{Kind: Reset}
	}
	if v < r.Low {
		// Extends the run downward; values between v and the old low are missing.
		between := uint64(r.Low) - uint64(v) - 1
		r.Low = v
		r.Seen |= 1 << below
		if between == 0 {
			return Observation{Kind: Late}
		}
		return Observation{Kind: Late, Missing: int64(between), Gaps: 1}
	}
	if r.Seen&(1<<below) != 0 {
		return Observation{Kind: Duplicate}
	}
	// Fills a missing slot strictly inside the run (Low and High are always seen).
	r.Seen |= 1 << below
	lowerSeen := r.Seen&(1<<(below+1)) != 0 // v-1 >= Low, since v > Low
	upperSeen := r.Seen&(1<<(below-1)) != 0 // v+1 <= High, since v < High
	o := Observation{Kind: Late, Missing: -1}
	switch {
	case lowerSeen && upperSeen:
		o.Gaps = -1 // the slot was a whole missing range
	case !lowerSeen && !upperSeen:
		o.Gaps = 1 // the slot splits a missing range in two
	}
	return o
}

func clampInt64(u uint64) int64 {
	if u > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(u)
}

func satAdd(a, b int64) int64 {
	s := a + b
	if b > 0 && s < a {
		return 1<<63 - 1
	}
	return s
}
