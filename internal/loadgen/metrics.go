package loadgen

import (
	"bytes"
	"math"
	"strconv"
	"strings"
)

// Metrics is a scrape of a Prometheus text exposition (inlet serve's /metrics):
// each series, "name" or "name{labels}", and its value.
type Metrics map[string]float64

// ParseMetrics reads the text format; comments and lines it cannot read are skipped.
func ParseMetrics(text []byte) Metrics {
	m := make(Metrics)
	for line := range bytes.Lines(text) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		var series, rest string
		if i := strings.LastIndexByte(s, '}'); i >= 0 {
			series, rest = s[:i+1], s[i+1:]
		} else {
			var ok bool
			if series, rest, ok = strings.Cut(s, " "); !ok {
				continue
			}
		}
		f := strings.Fields(rest) // the value, then maybe a timestamp
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			m[series] = v
		}
	}
	return m
}

// Has reports whether the scrape holds any series of the metric.
func (m Metrics) Has(name string) bool {
	for k := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			return true
		}
	}
	return false
}

// Sum adds up every series of a counter (all its label values).
func (m Metrics) Sum(name string) int64 {
	return int64(math.Round(m.Value(name)))
}

// Value is the sum of a series' values as a float (a histogram's _sum, say).
func (m Metrics) Value(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// ByLabel splits a counter by the values of one label.
func (m Metrics) ByLabel(name, label string) map[string]int64 {
	out := make(map[string]int64)
	for k, v := range m {
		labels, ok := strings.CutPrefix(k, name+"{")
		if !ok {
			continue
		}
		for l := range strings.SplitSeq(strings.TrimSuffix(labels, "}"), ",") {
			if val, ok := strings.CutPrefix(strings.TrimSpace(l), label+`="`); ok {
				out[strings.TrimSuffix(val, `"`)] += int64(math.Round(v))
			}
		}
	}
	return out
}
