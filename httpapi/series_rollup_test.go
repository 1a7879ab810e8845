package httpapi_test

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/httpapi"
	"github.com/inletdev/inlet/live"
	"github.com/inletdev/inlet/sqlite"
)

// rawOnly hides the store's rollups: the series it serves is read from the
// messages alone, the reference the rollups must agree with.
type rawOnly struct{ inlet.Reader }

// A long range read from the rollups gives the same series as one read from
// every message: the same rows, points, means and markers, the newest rows
// (not in rollups yet) included.
func TestSeriesFromRollups(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "inlet.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// A day and a half of a sensor every minute, a counter every minute with
	// a gap of 100 values, an acknowledged device with seqs 500-509 lost; then
	// rows up to a few seconds ago, in the open minute. A commit a minute, as
	// the writer makes them (receive times follow ids to within a batch).
	base := time.Now().Add(-36 * time.Hour).Truncate(time.Hour).UnixNano()
	end := time.Now().UnixNano() - 2e9
	var seq, counter int64
	for k := base; k < end; k = min(k+60e9, max(end-1e9, k+1)) {
		i := (k - base) / 60e9
		counter++
		if counter == 1000 {
			counter += 100
		}
		seq++
		if seq == 500 {
			seq += 10
		}
		b := &inlet.Batch{Messages: []inlet.Message{
			{ReceivedAt: k, Device: "sensor", Transport: inlet.UDP, Payload: []byte("x"),
				Fields: fmt.Appendf(nil, `{"temp":%.2f,"hum":%d}`, 20+5*math.Sin(float64(i)/50), i%100)},
			{ReceivedAt: k + 1e6, Device: "counter", Transport: inlet.UDP, Payload: fmt.Appendf(nil, "%d", counter),
				Fields: fmt.Appendf(nil, `{"value":%d}`, counter), Counter: counter, IsCounter: true},
			{ReceivedAt: k + 2e6, Device: "acked", Transport: inlet.TCP, Boot: "b1", Seq: seq, Payload: []byte("v=1"),
				Fields: []byte(`{"v":1}`)},
		}}
		b.Devices = []inlet.Device{{ID: "counter", Kind: inlet.KindCounter, Messages: counter, FirstSeen: base, LastSeen: k}}
		b.Boots = []inlet.Boot{{Device: "acked", Boot: "b1", Last: seq, Missing: []inlet.SeqRange{{From: 500, To: 509}}, Messages: seq, FirstSeen: base, LastSeen: k}}
		if err := store.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		if k >= end-1e9 {
			break
		}
	}
	if n, err := store.CheckRollups(ctx); err != nil {
		t.Fatalf("%d: %v", n, err)
	}
	serve := func(r inlet.Reader) string {
		hub, err := live.New(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(httpapi.Handler(httpapi.Config{Stats: new(inlet.Stats), Ready: func() bool { return true },
			Reader: r, Hub: hub, Logger: testLogger(t), Stop: make(chan struct{})}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	withRollups, raw := serve(store), serve(rawOnly{store})
	since := time.Unix(0, base).UTC().Format(time.RFC3339)
	until := time.Unix(0, base+30*3600e9).UTC().Format(time.RFC3339)
	// Where the points' time steps are whole hours or minutes, each rollup
	// falls in the step its rows do, and the points are the same; otherwise a
	// rollup goes whole to the step of its rows' mean time.
	for _, c := range []struct {
		device, query string
		aligned       bool
	}{
		{"sensor", "since=" + since + "&until=" + until + "&points=30", true},  // hours
		{"sensor", "since=" + since + "&until=" + until + "&points=180", true}, // minutes (10 a point)
		{"counter", "since=" + since + "&until=" + until + "&points=30", true},
		{"counter", "since=" + since + "&points=10", false}, // to now: the open minute from the messages
		{"acked", "since=" + since + "&until=" + until + "&points=60", true},
	} {
		var got, want apiSeries
		q := "/api/series?device=" + c.device + "&" + c.query
		getJSON(t, withRollups+q, &got)
		getJSON(t, raw+q, &want)
		got.check(t)
		if !got.Bucketed || got.Rows != want.Rows || len(got.T) != len(want.T) || fmt.Sprint(got.Fields) != fmt.Sprint(want.Fields) {
			t.Errorf("%s: bucketed %v, %d rows, %d points, fields %v; from the messages %d rows, %d points, fields %v",
				q, got.Bucketed, got.Rows, len(got.T), got.Fields, want.Rows, len(want.T), want.Fields)
			continue
		}
		if !c.aligned {
			continue
		}
		for i := range got.T {
			if math.Abs(got.T[i]-want.T[i]) > 0.002 {
				t.Errorf("%s: t[%d] %v, want %v", q, i, got.T[i], want.T[i])
				break
			}
		}
		for _, f := range want.Fields {
			for i := range want.Series[f] {
				g, w := got.Series[f][i], want.Series[f][i]
				if (g == nil) != (w == nil) || (g != nil && math.Abs(*g-*w) > 1e-9*math.Max(1, math.Abs(*w))) {
					t.Errorf("%s: %s[%d] %v, want %v", q, f, i, vals([]*float64{g}), vals([]*float64{w}))
					break
				}
			}
		}
		if len(got.Markers) != len(want.Markers) {
			t.Errorf("%s: markers %+v, want %+v", q, got.Markers, want.Markers)
			continue
		}
		for i := range got.Markers {
			g, w := got.Markers[i], want.Markers[i]
			// A counter's gap inside a rollup bucket spans the bucket's values,
			// and is placed at its first row.
			if g.Kind != w.Kind || g.From > w.From || g.To < w.To || g.Missing != w.Missing || g.Boot != w.Boot || math.Abs(g.T-w.T) > 3600 {
				t.Errorf("%s: marker %+v, want %+v", q, g, w)
			}
		}
	}
	// Pruning the messages keeps the long-range chart.
	q := "/api/series?device=sensor&since=" + since + "&until=" + until + "&points=30"
	var before, after apiSeries
	getJSON(t, withRollups+q, &before)
	if n, err := store.Prune(ctx, base+24*3600e9, sqlite.PruneOptions{}); err != nil || n == 0 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	getJSON(t, withRollups+q, &after)
	if after.Rows != before.Rows || len(after.T) != len(before.T) || fmt.Sprint(vals(after.Series["temp"])) != fmt.Sprint(vals(before.Series["temp"])) {
		t.Errorf("after pruning the messages: %d rows, %d points; before: %d rows, %d points", after.Rows, len(after.T), before.Rows, len(before.T))
	}
	// Since the first row, without until: every row, the newest included.
	var all apiSeries
	getJSON(t, withRollups+"/api/series?device=sensor&points=100", &all)
	var n int64 // every row the device sent, pruned or not
	for k := base; k < end; k = min(k+60e9, max(end-1e9, k+1)) {
		n++
		if k >= end-1e9 {
			break
		}
	}
	if !all.Bucketed || all.Rows != n {
		t.Errorf("whole series after pruning: bucketed %v, %d rows, want %d", all.Bucketed, all.Rows, n)
	}
}
