package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
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

func (s *seriesBuilder) addBucket(p rawPoint) {
	i := 0
	if s.t1 > s.t0 {
		i = int(float64(len(s.buckets)) * (p.t - s.t0) / (s.t1 - s.t0))
	}
	i = min(max(i, 0), len(s.buckets)-1)
	b := &s.buckets[i]
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
		i, ok := s.index[key]
		if !ok {
			if len(s.fields) == maxFields {
				continue
			}
			i = len(s.fields)
			s.fields = append(s.fields, key)
			s.index[key] = i
		}
		p.val[i] = x
		p.has |= 1 << i
	}
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
	type bootSeq struct {
		boot string
		seq  int64
	}
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
	var run inlet.CounterRun
	first := true
	var fbuf []byte
	err = a.cfg.Reader.Messages(ctx, q, func(m *inlet.Stored) error {
		t := math.Round(float64(m.ReceivedAt)/1e6) / 1000
		if first && q.Since == 0 {
			sb.t0 = t
		}
		first = false
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
			if rg, ok := after[bootSeq{m.Boot, m.Seq}]; ok {
				mark(marker{Kind: "gap", Missing: rg[1] - rg[0] + 1, From: rg[0], To: rg[1], Boot: m.Boot})
			}
			return nil
		}
		if !counter {
			return nil
		}
		var c int64
		var isCounter bool
		fbuf, c, isCounter = payload.AppendFields(fbuf[:0], m.Payload)
		if !isCounter {
			return nil
		}
		// The same accounting as the device's (inlet.CounterRun), started at
		// the range's first counter value.
		high := run.High
		switch o := run.Observe(c); o.Kind {
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
	if err != nil {
		if ctx.Err() == nil {
			a.fail(w, r, err)
		}
		return
	}
	sb.result(&out)
	writeJSON(w, http.StatusOK, out)
}
