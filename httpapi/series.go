package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/payload"
)

const (
	defaultPoints = 2000
	maxPoints     = 20000
	maxFields     = 16
	maxMarkers    = 1000
)

type marker struct {
	T       float64 `json:"t"`
	Kind    string  `json:"kind"` // gap, late, reset, duplicate
	Missing int64   `json:"missing,omitempty"`
	From    int64   `json:"from,omitempty"`
	To      int64   `json:"to,omitempty"`
	Boot    string  `json:"boot,omitempty"`
}

type seriesJSON struct {
	Device   string                `json:"device"`
	Fields   []string              `json:"fields"`
	T        []float64             `json:"t"`
	Series   map[string][]*float64 `json:"series"`
	Rows     int64                 `json:"rows"`
	Bucketed bool                  `json:"bucketed"`
	LastID   int64                 `json:"last_id"`
	Markers  []marker              `json:"markers"`
}

// bucket accumulates the rows that fall in one time step.
type bucket struct {
	n    int64
	tSum float64
	sum  [maxFields]float64
	cnt  [maxFields]int64
}

// seriesBuilder turns rows into at most maxPts chart points: raw while they fit,
// then means over equal time steps between t0 and t1.
type seriesBuilder struct {
	maxPts  int
	fields  []string
	index   map[string]int
	raw     []rawPoint
	buckets []bucket // nil until the rows no longer fit raw
	t0, t1  float64
}

type rawPoint struct {
	t   float64
	val [maxFields]float64
	has uint32 // bit i: field i present
}

func (s *seriesBuilder) add(p rawPoint) {
	if s.buckets == nil {
		s.raw = append(s.raw, p)
		if len(s.raw) <= s.maxPts {
			return
		}
		s.buckets = make([]bucket, s.maxPts)
		raw := s.raw
		s.raw = nil
		for _, q := range raw {
			s.addBucket(q)
		}
		return
	}
	s.addBucket(p)
}

// slot is the time step t falls in.
func (s *seriesBuilder) slot(t float64) int {
	i := 0
	if s.t1 > s.t0 {
		i = int(float64(len(s.buckets)) * (t - s.t0) / (s.t1 - s.t0))
	}
	return min(max(i, 0), len(s.buckets)-1)
}

func (s *seriesBuilder) addBucket(p rawPoint) {
	b := &s.buckets[s.slot(p.t)]
	b.n++
	b.tSum += p.t
	for f := range s.fields {
		if p.has&(1<<f) != 0 {
			b.sum[f] += p.val[f]
			b.cnt[f]++
		}
	}
}

// fieldsOf reads the numeric members of a flat JSON object, registering new
// field names (up to maxFields) in order of first appearance.
func (s *seriesBuilder) fieldsOf(fields []byte, p *rawPoint) {
	if len(fields) == 0 {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(fields))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return
		}
		vt, err := dec.Token()
		if err != nil {
			return
		}
		if d, ok := vt.(json.Delim); ok && (d == '{' || d == '[') {
			// A nested value (not something inlet writes, but a database may
			// have been edited): skip it whole.
			for depth := 1; depth > 0; {
				t, err := dec.Token()
				if err != nil {
					return
				}
				switch t {
				case json.Delim('{'), json.Delim('['):
					depth++
				case json.Delim('}'), json.Delim(']'):
					depth--
				}
			}
			continue
		}
		num, ok := vt.(json.Number)
		if !ok {
			continue
		}
		x, err := num.Float64()
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			continue
		}
		key, ok := kt.(string)
		if !ok {
			return
		}
		i, ok := s.field(key)
		if !ok {
			continue
		}
		p.val[i] = x
		p.has |= 1 << i
	}
}

// field returns the column of a field name, registering it while there is
// room.
func (s *seriesBuilder) field(key string) (int, bool) {
	i, ok := s.index[key]
	if !ok {
		if len(s.fields) == maxFields {
			return 0, false
		}
		i = len(s.fields)
		s.fields = append(s.fields, key)
		s.index[key] = i
	}
	return i, true
}

func (s *seriesBuilder) result(out *seriesJSON) {
	out.Fields = s.fields
	if out.Fields == nil {
		out.Fields = []string{}
	}
	out.Series = make(map[string][]*float64, len(s.fields))
	col := func(f int, n int) []*float64 { return make([]*float64, 0, n) }
	if s.buckets == nil {
		out.T = make([]float64, 0, len(s.raw))
		for f, name := range s.fields {
			c := col(f, len(s.raw))
			for i := range s.raw {
				if s.raw[i].has&(1<<f) != 0 {
					v := s.raw[i].val[f]
					c = append(c, &v)
				} else {
					c = append(c, nil)
				}
			}
			out.Series[name] = c
		}
		for i := range s.raw {
			out.T = append(out.T, s.raw[i].t)
		}
		return
	}
	out.Bucketed = true
	out.T = []float64{}
	for f := range s.fields {
		out.Series[s.fields[f]] = col(f, len(s.buckets))
	}
	for i := range s.buckets {
		b := &s.buckets[i]
		if b.n == 0 {
			continue
		}
		out.T = append(out.T, math.Round(b.tSum/float64(b.n)*1000)/1000)
		for f, name := range s.fields {
			if b.cnt[f] == 0 {
				out.Series[name] = append(out.Series[name], nil)
				continue
			}
			v := b.sum[f] / float64(b.cnt[f])
			out.Series[name] = append(out.Series[name], &v)
		}
	}
}

func (a *api) series(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if q.Device == "" {
		writeError(w, http.StatusBadRequest, "device: required")
		return
	}
	pts := defaultPoints
	if s := r.URL.Query().Get("points"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPoints {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("points %q: want 1 to %d", s, maxPoints))
			return
		}
		pts = n
	}
	ctx := r.Context()
	// A long range costs seconds of CPU: a few at a time, the rest wait.
	select {
	case a.series1 <- struct{}{}:
		defer func() { <-a.series1 }()
	case <-ctx.Done():
		return
	}
	// Acknowledged devices: mark where a missing seq range ends, from the
	// boots' recorded ranges (what is still missing, not what was late).
	after := make(map[bootSeq][2]int64)
	boots, err := a.cfg.Reader.DeviceBoots(ctx, q.Device)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	for _, b := range boots {
		for _, m := range b.Missing {
			after[bootSeq{b.Boot, m.To + 1}] = [2]int64{m.From, m.To}
		}
	}

	// Counter markers only for a device the server takes for a counter now: a
	// sensor's readings going up and down are not loss (docs/protocol.md).
	devs, err := a.cfg.Reader.Devices(ctx)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	counter := false
	for i := range devs {
		if devs[i].ID == q.Device {
			counter = devs[i].KindName() == "counter"
			break
		}
	}

	now := float64(time.Now().UnixNano()) / 1e9
	sb := &seriesBuilder{maxPts: pts, index: make(map[string]int), t0: float64(q.Since) / 1e9, t1: now}
	if q.Until != 0 {
		sb.t1 = float64(q.Until) / 1e9
	}
	out := seriesJSON{Device: q.Device, Markers: []marker{}}
	if q.Until == 0 {
		// A range with no rows still gives the point to continue live from.
		if out.LastID, err = a.cfg.Reader.LastID(ctx); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	rr := &rawReader{a: a, sb: sb, out: &out, after: after, counter: counter}
	if ru, ok := a.cfg.Reader.(rollupReader); ok {
		done, err := a.seriesRollups(ctx, ru, q, sb, rr, boots)
		if err != nil {
			if ctx.Err() == nil {
				a.fail(w, r, err)
			}
			return
		}
		if done {
			sb.result(&out)
			sortMarkers(out.Markers)
			writeJSON(w, http.StatusOK, out)
			return
		}
	}
	rr.first = q.Since == 0
	if err := rr.read(ctx, q); err != nil {
		if ctx.Err() == nil {
			a.fail(w, r, err)
		}
		return
	}
	sb.result(&out)
	writeJSON(w, http.StatusOK, out)
}

type bootSeq struct {
	boot string
	seq  int64
}

// rawReader adds stored messages to a series, with their markers.
type rawReader struct {
	a       *api
	sb      *seriesBuilder
	out     *seriesJSON
	after   map[bootSeq][2]int64 // acknowledged: the missing range a seq ends
	counter bool
	first   bool // the range's first row sets t0 (no since)
	run     inlet.CounterRun
	fbuf    []byte
}

func (rr *rawReader) read(ctx context.Context, q inlet.Query) error {
	sb, out := rr.sb, rr.out
	return rr.a.cfg.Reader.Messages(ctx, q, func(m *inlet.Stored) error {
		t := math.Round(float64(m.ReceivedAt)/1e6) / 1000
		if rr.first {
			sb.t0 = t
			rr.first = false
		}
		out.Rows++
		out.LastID = max(out.LastID, m.ID)
		var p rawPoint
		p.t = t
		sb.fieldsOf(m.Fields, &p)
		sb.add(p)
		mark := func(mk marker) {
			if len(out.Markers) < maxMarkers {
				mk.T = t
				out.Markers = append(out.Markers, mk)
			}
		}
		if m.Seq != 0 {
			if rg, ok := rr.after[bootSeq{m.Boot, m.Seq}]; ok {
				mark(marker{Kind: "gap", Missing: rg[1] - rg[0] + 1, From: rg[0], To: rg[1], Boot: m.Boot})
			}
			return nil
		}
		if !rr.counter {
			return nil
		}
		var c int64
		var isCounter bool
		rr.fbuf, c, isCounter = payload.AppendFields(rr.fbuf[:0], m.Payload)
		if !isCounter {
			return nil
		}
		// The same accounting as the device's (inlet.CounterRun), started at
		// the range's first counter value.
		high := rr.run.High
		switch o := rr.run.Observe(c); o.Kind {
		case inlet.Jump:
			mark(marker{Kind: "gap", Missing: o.Missing, From: high + 1, To: c - 1})
		case inlet.Late:
			mark(marker{Kind: "late", From: c, To: c})
		case inlet.Duplicate:
			mark(marker{Kind: "duplicate", From: c, To: c})
		case inlet.Reset:
			mark(marker{Kind: "reset", From: high, To: c})
		}
		return nil
	})
}

// rollupReader is a store that keeps rollups (sqlite.Store): per device,
// minute or hour and numeric field, the count, min, max and sum of the values,
// field "" being the bucket's rows and their receive times in seconds after
// the bucket's start.
type rollupReader interface {
	RollupFrontier(ctx context.Context) (int64, error)
	Rollups(ctx context.Context, device string, step, from, to int64,
		fn func(bucket int64, field string, n int64, min, max, sum float64) error) error
	FirstReceived(ctx context.Context, device string) (int64, bool, error)
	SeqReceived(ctx context.Context, device, boot string, seq int64) (int64, bool, error)
}

// Rollup steps (seconds), and the most minute rollups a series reads before it
// takes hours instead (fewer points than asked): 20,000 minutes is 14 days, and
// reading a minute's rows costs about 7 µs of CPU (BENCHMARKS.md).
const (
	stepMinute     = 60
	stepHour       = 3600
	maxMinuteReads = 20_000
)

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// seriesRollups answers a range whose time step is a minute or more from the
// rollups, with the messages for the part of a minute at its start and for the
// newest minutes, not in rollups yet. It reports false, having read nothing,
// for a range to read from the messages alone.
func (a *api) seriesRollups(ctx context.Context, ru rollupReader, q inlet.Query, sb *seriesBuilder, rr *rawReader, boots []inlet.Boot) (bool, error) {
	t0 := q.Since
	if t0 == 0 {
		at, ok, err := ru.FirstReceived(ctx, q.Device)
		if err != nil || !ok {
			return false, err
		}
		t0 = at
	}
	t1 := q.Until
	if t1 == 0 {
		t1 = time.Now().UnixNano()
	}
	if t1 <= t0 {
		return false, nil
	}
	span := float64(t1-t0) / 1e9
	step := span / float64(sb.maxPts)
	if step < stepMinute {
		return false, nil
	}
	frontier, err := ru.RollupFrontier(ctx)
	if err != nil {
		return false, err
	}
	// Minutes [mA, mB) are whole, inside the range, and in rollups.
	mA := -floorDiv(-t0, stepMinute*1e9) * stepMinute
	mB := min(floorDiv(t1, stepMinute*1e9)*stepMinute, frontier)
	if mA >= mB {
		return false, nil
	}
	type segment struct{ step, from, to int64 }
	segs := []segment{{stepMinute, mA, mB}}
	if step >= stepHour || span/stepMinute > maxMinuteReads {
		hA := -floorDiv(-t0, stepHour*1e9) * stepHour
		hB := min(floorDiv(t1, stepHour*1e9)*stepHour, floorDiv(frontier, stepHour)*stepHour)
		if hA < hB {
			segs = []segment{{stepMinute, mA, hA}, {stepHour, hA, hB}, {stepMinute, hB, mB}}
		}
	}
	out := rr.out
	// Fields in the order the first message of the range has them (rollups
	// list them by name).
	err = a.cfg.Reader.Messages(ctx, inlet.Query{Device: q.Device, Since: t0, Limit: 1}, func(m *inlet.Stored) error {
		var p rawPoint
		sb.fieldsOf(m.Fields, &p)
		return nil
	})
	if err != nil {
		return false, err
	}
	sb.t0 = math.Round(float64(t0)/1e6) / 1000
	sb.buckets = make([]bucket, sb.maxPts)
	out.Bucketed = true
	// Acknowledged devices' markers: the time of the seq after each missing
	// range, looked up (the raw reads below add none).
	rr.after = nil
	for _, b := range boots {
		for _, m := range b.Missing {
			if len(out.Markers) >= maxMarkers {
				break
			}
			at, ok, err := ru.SeqReceived(ctx, q.Device, b.Boot, m.To+1)
			if err != nil {
				return false, err
			}
			if ok && at >= t0 && at < t1 {
				out.Markers = append(out.Markers, marker{T: math.Round(float64(at)/1e6) / 1000, Kind: "gap",
					Missing: m.To - m.From + 1, From: m.From, To: m.To, Boot: b.Boot})
			}
		}
	}
	// The part of a minute at the start.
	if err := rr.read(ctx, inlet.Query{Device: q.Device, Since: t0, Until: mA * 1e9}); err != nil {
		return false, err
	}
	var cur int        // the time step of the rollup bucket being read
	var first float64  // its first row's time
	var prevHi float64 // a counter's highest value in the previous bucket
	havePrev := false
	mark := func(mk marker) {
		if len(out.Markers) < maxMarkers {
			out.Markers = append(out.Markers, mk)
		}
	}
	for _, sg := range segs {
		if sg.from >= sg.to {
			continue
		}
		err := ru.Rollups(ctx, q.Device, sg.step, sg.from, sg.to, func(bucket int64, field string, n int64, lo, hi, sum float64) error {
			if field == "" {
				cur = sb.slot(float64(bucket) + sum/float64(n))
				first = float64(bucket) + lo
				b := &sb.buckets[cur]
				b.n += n
				b.tSum += float64(bucket)*float64(n) + sum
				out.Rows += n
				return nil
			}
			if i, ok := sb.field(field); ok {
				b := &sb.buckets[cur]
				b.sum[i] += sum
				b.cnt[i] += n
			}
			if !rr.counter || field != "value" || lo != math.Trunc(lo) || hi != math.Trunc(hi) {
				return nil
			}
			// A counter's loss from its buckets' count, lowest and highest
			// value: a jump between buckets, values missing within one.
			t := math.Round(first*1000) / 1000
			switch {
			case havePrev && lo > prevHi+1:
				mark(marker{T: t, Kind: "gap", Missing: int64(lo - prevHi - 1), From: int64(prevHi) + 1, To: int64(lo) - 1})
			case havePrev && lo < prevHi-inlet.Window:
				mark(marker{T: t, Kind: "reset", From: int64(prevHi), To: int64(lo)})
			}
			if missing := int64(hi-lo+1) - n; missing > 0 {
				mark(marker{T: t, Kind: "gap", Missing: missing, From: int64(lo), To: int64(hi)})
			}
			prevHi, havePrev = hi, true
			return nil
		})
		if err != nil {
			return false, err
		}
	}
	// The newest minutes, and the open one.
	rr.run = inlet.CounterRun{}
	if err := rr.read(ctx, inlet.Query{Device: q.Device, Since: mB * 1e9, Until: q.Until}); err != nil {
		return false, err
	}
	return true, nil
}

// sortMarkers puts markers in time order (a long range gathers them from the
// rollups and the messages in turn).
func sortMarkers(ms []marker) {
	slices.SortStableFunc(ms, func(a, b marker) int { return cmp.Compare(a.T, b.T) })
}
