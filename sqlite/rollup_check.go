package sqlite

import (
	"context"
	"fmt"
	"math"
	"strings"
)

// CheckRollups compares the written rollups with a recomputation from the
// stored messages (in SQL, with json_each: independent of the writer's code):
// every minute before the frontier and every hour before its hour, from the
// first whole bucket after the oldest stored message (older ones may have been
// pruned). Counts, minimums and maximums must be equal (receive times to
// within a nanosecond), sums equal to within rounding (1e-9 relative). It returns the number of rows compared, and an error
// naming the first differences.
func (s *Store) CheckRollups(ctx context.Context) (int, error) {
	frontier, err := s.RollupFrontier(ctx)
	if err != nil {
		return 0, err
	}
	var oldest int64
	if err := s.db.QueryRowContext(ctx, "SELECT coalesce(min(received_at), 0) FROM messages").Scan(&oldest); err != nil {
		return 0, fmt.Errorf("sqlite: check rollups: %w", err)
	}
	type key struct {
		device string
		step   int64
		bucket int64
		field  string
	}
	want := make(map[key]agg)
	got := make(map[key]agg)
	for _, step := range []int64{StepMinute, StepHour} {
		from := floorDiv(oldest, step*1e9)*step + step
		to := floorDiv(frontier, step) * step
		ns := step * 1e9
		recompute := []string{
			fmt.Sprintf(`SELECT device, received_at / %[1]d * %[2]d AS b, '', count(*),
				min((received_at - received_at / %[1]d * %[1]d) / 1e9), max((received_at - received_at / %[1]d * %[1]d) / 1e9),
				total((received_at - received_at / %[1]d * %[1]d) / 1e9)
				FROM messages WHERE b >= ?1 AND b < ?2 GROUP BY device, b`, ns, step),
			fmt.Sprintf(`SELECT m.device, m.received_at / %[1]d * %[2]d AS b, j.key, count(*), min(j.value), max(j.value), total(j.value)
				FROM messages m, json_each(CASE WHEN json_valid(m.fields) THEN m.fields END) j
				WHERE j.type IN ('integer', 'real') AND j.key != '' AND b >= ?1 AND b < ?2
				GROUP BY m.device, b, j.key`, ns, step),
		}
		for _, q := range recompute {
			if err := s.collect(ctx, q, from, to, func(d string, b int64, f string, a agg) { want[key{d, step, b, f}] = a }); err != nil {
				return 0, fmt.Errorf("sqlite: check rollups: recompute: %w", err)
			}
		}
		err := s.collect(ctx, "SELECT device, bucket, field, n, min, max, sum FROM rollups WHERE step = "+fmt.Sprint(step)+
			" AND bucket >= ?1 AND bucket < ?2", from, to, func(d string, b int64, f string, a agg) { got[key{d, step, b, f}] = a })
		if err != nil {
			return 0, fmt.Errorf("sqlite: check rollups: %w", err)
		}
	}
	var diffs []string
	near := func(a, b float64) bool {
		return a == b || math.Abs(a-b) <= 1e-9*max(1, math.Abs(a), math.Abs(b))
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%+v missing (want %+v)", k, w))
		case g.n != w.n || !near(g.sum, w.sum) || (k.field != "" && (g.min != w.min || g.max != w.max)) ||
			(k.field == "" && (math.Abs(g.min-w.min) > 1e-9 || math.Abs(g.max-w.max) > 1e-9)):
			diffs = append(diffs, fmt.Sprintf("%+v: %+v, want %+v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%+v: %+v, want none", k, g))
		}
	}
	if len(diffs) > 0 {
		if len(diffs) > 10 {
			diffs = append(diffs[:10], fmt.Sprintf("… %d more", len(diffs)-10))
		}
		return len(want), fmt.Errorf("sqlite: rollups differ from the messages (frontier %d):\n%s", frontier, strings.Join(diffs, "\n"))
	}
	return len(want), nil
}

func (s *Store) collect(ctx context.Context, q string, from, to int64, fn func(string, int64, string, agg)) error {
	rows, err := s.db.QueryContext(ctx, q, from, to)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var d, f string
		var b int64
		var a agg
		if err := rows.Scan(&d, &b, &f, &a.n, &a.min, &a.max, &a.sum); err != nil {
			return err
		}
		fn(d, b, f, a)
	}
	return rows.Err()
}
