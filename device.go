package inlet

// Device is the loss accounting the server keeps per device (docs/protocol.md,
// "Loss accounting of plain devices"). It is updated by the commit writer in the same transaction
// as the messages it counts, so the two never disagree after a crash.
//
// Gaps, Missing, Duplicates and Resets are the raw accounting: for a plain device,
// every lone integer taken as a counter value (CounterRun), whatever the device
// sends; for an acknowledged device, its sequence numbers. What is reported for a
// plain device is Loss, and only while Kind is KindCounter (see Reported).
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

	// Plain devices: whether the lone integers behave like a counter, and the
	// loss reported for them.
	Kind     Kind
	Evidence Evidence
	Loss     Loss // counted while a counter (with the learning before it), confirmed by a later next value
	Suspect  Loss // counted while a counter since its last next value: dropped if it stops being one
	Pending  Loss // counted while not a counter: joins Loss if the device turns out to be one
}

// Kind says how a plain device's loss is known.
type Kind uint8

const (
	// KindValues: the device's payloads are values (sensor readings, text), or
	// lone integers that do not (yet) behave like a counter: loss is unknown.
	KindValues Kind = iota
	// KindCounter: its lone integers behave like the tutorial's counter, and the
	// values missing from it are readings lost.
	KindCounter
)

// Loss is one set of loss figures.
type Loss struct {
	Gaps, Missing, Duplicates, Resets int64
}

func (l *Loss) add(o Loss) {
	l.Gaps += o.Gaps
	l.Missing = satAdd(l.Missing, o.Missing)
	l.Duplicates += o.Duplicates
	l.Resets += o.Resets
}

// floor keeps reported figures from going below zero: a late arrival can fill a
// slot opened while the device was not counted (before it was a counter, or
// while it was values), whose opening was never added.
func (l *Loss) floor() {
	l.Gaps, l.Missing = max(l.Gaps, 0), max(l.Missing, 0)
}

// Acked reports whether the device speaks the acknowledged protocol.
func (d *Device) Acked() bool { return d.LastBoot != "" }

// KindName is the device's kind as the API, the CLI and the schema spell it:
// "acked", "counter" or "values".
func (d *Device) KindName() string {
	switch {
	case d.Acked():
		return "acked"
	case d.Kind == KindCounter:
		return "counter"
	}
	return "values"
}

// Reported returns the device's loss and whether it is known: an acknowledged
// device's seq accounting, a counter's Loss; a values device's loss is unknown.
func (d *Device) Reported() (Loss, bool) {
	switch {
	case d.Acked():
		return Loss{d.Gaps, d.Missing, d.Duplicates, d.Resets}, true
	case d.Kind == KindCounter:
		l := d.Loss
		l.add(d.Suspect)
		l.floor()
		return l, true
	}
	return Loss{}, false
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
	o := d.Run.Observe(m.Counter)
	var c Loss
	switch o.Kind {
	case Duplicate:
		c.Duplicates = 1
	case Reset:
		c.Resets = 1
	default:
		c.Missing, c.Gaps = o.Missing, o.Gaps
	}
	d.Gaps += c.Gaps
	d.Missing = satAdd(d.Missing, c.Missing)
	d.Duplicates += c.Duplicates
	d.Resets += c.Resets
	d.classify(o, c)
}

// Counter recognition (docs/protocol.md, "Loss accounting of plain devices"). Each lone integer is
// evidence: the next value (highest+1) for a counter; a duplicate, a reset or a
// jump over more than Window values against one; a late arrival, a small jump
// (lost readings) or the first value neither. Over the last EvidenceWindow
// pieces of evidence, at least CounterMin of them and three quarters for the
// counter make a device a counter; fewer than half, or the last four all
// against, make it values again. The gap between the two keeps a device from
// flapping.
const (
	EvidenceWindow = 16
	CounterMin     = 8
	// MaxJump bounds the values one jump may count as missing: a larger jump is a
	// stray value (a corrupt reading, a wrong sketch), not a million lost readings.
	MaxJump = 1_000_000
)

// Evidence is the recent evidence about a device's lone integers: Bits holds one
// bit per piece, newest in bit 0 (1: for a counter, 0: against), N how many of
// the EvidenceWindow bits are filled.
type Evidence struct {
	Bits uint16
	N    uint8
}

func (e *Evidence) push(forCounter bool) {
	e.Bits <<= 1
	if forCounter {
		e.Bits |= 1
	}
	if e.N < EvidenceWindow {
		e.N++
	}
}

func (e Evidence) ones() int {
	n := 0
	for b := e.Bits & (1<<e.N - 1); b != 0; b &= b - 1 {
		n++
	}
	return n
}

// Counter reports that the evidence makes the device a counter.
func (e Evidence) Counter() bool {
	return e.N >= CounterMin && 4*e.ones() >= 3*int(e.N)
}

// Values reports that the evidence makes the device not a counter.
func (e Evidence) Values() bool {
	return e.N >= 4 && e.Bits&0xf == 0 || e.N >= CounterMin && 2*e.ones() < int(e.N)
}

// Pack and UnpackEvidence are the stored form: N<<16 | Bits.
func (e Evidence) Pack() int64 { return int64(e.N)<<16 | int64(e.Bits) }

// UnpackEvidence reads a stored Evidence.
func UnpackEvidence(v int64) Evidence {
	return Evidence{Bits: uint16(v), N: uint8(min(max(v>>16, 0), EvidenceWindow))}
}

func (d *Device) classify(o Observation, c Loss) {
	stray := o.Kind == Jump && o.Missing > MaxJump
	if stray {
		c = Loss{} // neither missing nor a gap: the next real value will count a reset
	}
	switch {
	case d.Kind != KindCounter:
		d.Pending.add(c)
	case o.Kind == Next:
		// The counter goes on: what it counted since the last next value was loss.
		d.Loss.add(d.Suspect)
		d.Loss.floor()
		d.Suspect = Loss{}
	default:
		d.Suspect.add(c)
	}
	switch o.Kind {
	case Next:
		d.Evidence.push(true)
	case Duplicate, Reset:
		d.Evidence.push(false)
	case Jump:
		if o.Missing > Window {
			d.Evidence.push(false)
		}
	}
	switch {
	case d.Kind != KindCounter && d.Evidence.Counter():
		d.Kind = KindCounter
		d.Loss.add(d.Pending)
		d.Loss.floor()
		d.Pending = Loss{}
	case d.Kind == KindCounter && d.Evidence.Values():
		// Not a counter any more (a new sketch sends readings): what the
		// readings since the last next value would have lost means nothing.
		d.Kind = KindValues
		d.Suspect = Loss{}
	case d.Kind != KindCounter && d.Evidence.Values():
		// Clearly not a counter: what it would have lost as one means nothing.
		d.Pending = Loss{}
	}
}

// LastCounter is the highest value of the current counter run, and whether there is one.
func (d *Device) LastCounter() (int64, bool) { return d.Run.High, d.Run.Active }

// Window is how far below the highest counter value a message is still taken as a
// late arrival rather than a reset (docs/protocol.md §3).
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
