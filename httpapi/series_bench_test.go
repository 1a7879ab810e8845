package httpapi_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/httpapi"
	"github.com/inletdev/inlet/live"
	"github.com/inletdev/inlet/sqlite"
)

// BenchmarkSeriesYear is GET /api/series over one year of a device sending
// `temp=…,hum=…` every second (31.5 M messages). Building that many messages
// takes too long here, so the database holds the year as its rollups (written
// directly: 525,600 minutes and 8,760 hours of three rows each, as the writer
// would write them for such a device; TestRollupsMatchRecomputation shows the
// writer's rollups are those of the messages) and the last 20 minutes as
// messages, committed through the store (so the newest minutes are read from
// the messages and the rollups' open buckets are the writer's own). The
// answers are read as the dashboard reads them (points=2000), over a year, 30
// days and an hour.
func BenchmarkSeriesYear(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "inlet.db")
	store, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	frontier := now.Add(-20*time.Minute).Unix() / 600 * 600
	start := frontier - 365*86400
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	built := time.Now()
	for _, q := range []string{
		`WITH RECURSIVE m(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM m WHERE i < 365 * 1440 - 1)
		 INSERT INTO rollups (device, step, bucket, field, n, min, max, sum)
		 SELECT 'year', 60, ?1 + i * 60, f.field, 60,
		        CASE f.field WHEN '' THEN 0.2 WHEN 'hum' THEN 40 + i % 20 ELSE 20 + (i % 1440) / 144.0 - 0.5 END,
		        CASE f.field WHEN '' THEN 59.2 WHEN 'hum' THEN 45 + i % 20 ELSE 20 + (i % 1440) / 144.0 + 0.5 END,
		        CASE f.field WHEN '' THEN 60 * 29.7 WHEN 'hum' THEN 60 * (42.5 + i % 20) ELSE 60 * (20 + (i % 1440) / 144.0) END
		 FROM m, (SELECT '' AS field UNION ALL SELECT 'hum' UNION ALL SELECT 'temp') f ORDER BY 3, 4`,
		`INSERT INTO rollups (device, step, bucket, field, n, min, max, sum)
		 SELECT device, 3600, bucket / 3600 * 3600 AS h, field, sum(n),
		        min(CASE field WHEN '' THEN min + (bucket - bucket / 3600 * 3600) ELSE min END),
		        max(CASE field WHEN '' THEN max + (bucket - bucket / 3600 * 3600) ELSE max END),
		        total(CASE field WHEN '' THEN sum + n * (bucket - bucket / 3600 * 3600) ELSE sum END)
		 FROM rollups WHERE device = 'year' AND step = 60 AND bucket < ?2 / 3600 * 3600 GROUP BY device, h, field`,
		`UPDATE rollup_state SET frontier = ?2`,
	} {
		if _, err := db.ExecContext(ctx, q, start, frontier); err != nil {
			b.Fatal(err)
		}
	}
	db.Close()
	// The last 20 minutes as messages, a commit a second.
	end := now.UnixNano()
	for at := frontier * 1e9; at < end; at += 1e9 {
		m := inlet.Message{ReceivedAt: at, Device: "year", Transport: inlet.UDP, Payload: []byte("x"),
			Fields: fmt.Appendf(nil, `{"temp":%.1f,"hum":%d}`, 20+float64(at/1e9%600)/100, at/1e9%20+40)}
		if err := store.Commit(ctx, &inlet.Batch{Messages: []inlet.Message{m}}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("built a year of rollups and %d s of messages in %.1f s", (end-frontier*1e9)/1e9, time.Since(built).Seconds())
	hub, err := live.New(ctx, store)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.Handler(httpapi.Config{Stats: new(inlet.Stats), Ready: func() bool { return true },
		Reader: store, Hub: hub, Logger: testLogger(b), Stop: make(chan struct{})}))
	defer srv.Close()
	for _, c := range []struct {
		name string
		span time.Duration
	}{{"year", 365 * 24 * time.Hour}, {"30days", 30 * 24 * time.Hour}, {"hour", time.Hour}} {
		b.Run(c.name, func(b *testing.B) {
			u := srv.URL + "/api/series?device=year&points=2000&since=" + url.QueryEscape(now.Add(-c.span).UTC().Format(time.RFC3339))
			var rows int64
			cpu0 := processCPU()
			for b.Loop() {
				resp, err := http.Get(u)
				if err != nil {
					b.Fatal(err)
				}
				var s apiSeries
				if err := decodeJSON(resp, &s); err != nil {
					b.Fatal(err)
				}
				rows = s.Rows
				if resp.StatusCode != http.StatusOK || len(s.T) == 0 {
					b.Fatalf("%s: %d points", resp.Status, len(s.T))
				}
			}
			b.ReportMetric(float64(rows), "rows")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
			// CPU time, server and client (in this process): on a shared
			// machine the wall time also counts the waits for a core.
			b.ReportMetric(float64((processCPU()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

func decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// processCPU is the process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
