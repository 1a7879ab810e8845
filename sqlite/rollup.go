package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/inletdev/inlet"
)

// Rollups (table rollups, docs/schema.md): per device, minute or hour bucket and
// numeric field, the count, min, max and sum of the values, and under field ""
// the bucket's rows and their receive times. They are always exactly what a
// recomputation from the messages would give, for the rows still stored:
//
//   - A minute bucket is written once, after it closes: when a commit holds a
//     message received in a later ten minutes (flushEvery; messages are stamped
//     as they enter the commit queue, so later ones are never earlier). It is
//     written in that commit's transaction, together with
//     rollup_state.frontier, the start of the first minute not written. An hour is written the same way when the
//     frontier passes its end, from its minutes. Open buckets live in memory.
//   - A message received before the frontier (the clock stepped back) is added
//     to its written buckets at once, in its own commit (an upsert that adds).
//   - After a crash, or a commit that failed, the open buckets are rebuilt from
//     what is committed: the minutes of the open hour from rollups, the open
//     minutes from the messages received at or after the frontier.
//
// So rollups cost one row per device, field and minute (and hour), written in
// the commit that closes it, never one per message.

// Rollup steps, in seconds.
const (
	StepMinute = 60
	StepHour   = 3600
)

// flushEvery (seconds) is how often closed minutes are written: the frontier
// moves to multiples of it. A write touches a page per device (their rows are
// kept together for the charts' reads), so ten minutes a write cost a tenth of
// the pages of one a minute (BENCHMARKS.md); a restart reads back at most that
// much of the messages.
const flushEvery = 10 * StepMinute

// agg is count, min, max and sum of some values.
type agg struct {
	n             int64
	min, max, sum float64
}

func (a *agg) add(v float64) {
	if a.n == 0 {
		a.min, a.max = v, v
	} else {
		a.min, a.max = min(a.min, v), max(a.max, v)
	}
	a.n++
	a.sum += v
}

// merge adds b, whose values are shift more than a's (field "": times).
func (a *agg) merge(b agg, shift float64) {
	if b.n == 0 {
		return
	}
	if a.n == 0 {
		a.min, a.max = b.min+shift, b.max+shift
	} else {
		a.min, a.max = min(a.min, b.min+shift), max(a.max, b.max+shift)
	}
	a.n += b.n
	a.sum += b.sum + float64(b.n)*shift
}

type fieldAgg struct {
	name string
	agg
}

// bucketAgg is one device's bucket: its rows (times in seconds after the
// bucket's start) and its fields, in order of first appearance.
type bucketAgg struct {
	rows   agg
	fields []fieldAgg
}

func (b *bucketAgg) field(name []byte) *agg {
	for i := range b.fields {
		if b.fields[i].name == string(name) {
			return &b.fields[i].agg
		}
	}
	b.fields = append(b.fields, fieldAgg{name: string(name)})
	return &b.fields[len(b.fields)-1].agg
}

func (b *bucketAgg) merge(o *bucketAgg, shift float64) {
	b.rows.merge(o.rows, shift)
	for i := range o.fields {
		b.field([]byte(o.fields[i].name)).merge(o.fields[i].agg, 0)
	}
}

type devBucket struct {
	device string
	bucket int64 // unix seconds
}

type buckets map[devBucket]*bucketAgg

func (m buckets) get(device string, bucket int64) *bucketAgg {
	k := devBucket{device, bucket}
	b := m[k]
	if b == nil {
		b = new(bucketAgg)
		m[k] = b
	}
	return b
}

// rollups is the writer's rollup state: the open buckets, and what to write in
// the transaction under way.
type rollups struct {
	s        *Store
	frontier int64 // unix seconds, a multiple of StepMinute: minutes before it are written
	lastID   int64 // the highest message id folded (in memory or written)
	maxAt    int64 // the latest receive time folded, unix nanoseconds
	minutes  buckets
	hours    buckets // open hours: their minutes before the frontier
	lateMin  buckets // late rows, added to written minutes in this transaction
	lateHour buckets
	// staged: the state has changed for a transaction not yet committed; if it
	// is not (a failed or abandoned commit), it is rebuilt before the next one.
	staged bool
	valid  bool
	args   []driver.NamedValue
	stmts  map[int]driver.StmtExecContext // upserts by row count
	off    bool                           // not kept: only for the benchmarks' A/B (rollup_export_test.go)
	// The open minute folded last, and its key; nil after minutes are
	// written or rebuilt.
	last    *bucketAgg
	lastKey devBucket
}

func newRollups(s *Store) *rollups { return &rollups{s: s} }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// fold adds one stored row to the open buckets, or to the late ones when it
// belongs before the frontier.
func (r *rollups) fold(device string, at int64, fields []byte) {
	r.maxAt = max(r.maxAt, at)
	m := floorDiv(at, StepMinute*1e9) * StepMinute
	h := floorDiv(m, StepHour) * StepHour
	var b *bucketAgg
	start := m
	switch {
	case m >= r.frontier && r.last != nil && r.lastKey == (devBucket{device, m}):
		b = r.last // a batch holds each device's rows together
	case m >= r.frontier:
		b = r.minutes.get(device, m)
		r.last, r.lastKey = b, devBucket{device, m}
	default:
		r.addRow(r.lateMin.get(device, m), m, at, fields)
		start = h
		if h >= floorDiv(r.frontier, StepHour)*StepHour {
			b = r.hours.get(device, h)
		} else {
			b = r.lateHour.get(device, h)
		}
	}
	r.addRow(b, start, at, fields)
}

func (r *rollups) addRow(b *bucketAgg, start, at int64, fields []byte) {
	b.rows.add(float64(at-start*1e9) / 1e9)
	eachNumber(fields, func(key []byte, v float64) {
		b.field(key).add(v)
	})
}

// eachNumber calls fn for every number member of a flat JSON object but the
// one keyed "" (which would be the rows), as SQLite's json_each types
// 'integer' and 'real'. Fields are written by the payload package in a
// canonical form, read here without allocating; anything else goes through
// encoding/json.
func eachNumber(obj []byte, fn func(key []byte, v float64)) {
	if len(obj) == 0 {
		return
	}
	if !eachNumberFast(obj, fn) {
		eachNumberSlow(obj, fn)
	}
}

// eachNumberFast handles {"k":number-or-string,...} with keys free of
// escapes and at most 32 numbers; it reports false, having called fn for
// nothing, otherwise.
func eachNumberFast(obj []byte, fn func(key []byte, v float64)) bool {
	if len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}' {
		return false
	}
	type kv struct {
		key []byte
		v   float64
	}
	var found [32]kv
	nf := 0
	i := 1
	if obj[i] == '}' {
		return i == len(obj)-1
	}
	for {
		if obj[i] != '"' {
			return false
		}
		j := i + 1
		for j < len(obj) && obj[j] != '"' {
			if obj[j] == '\\' {
				return false
			}
			j++
		}
		if j+2 >= len(obj) || obj[j+1] != ':' {
			return false
		}
		key := obj[i+1 : j]
		i = j + 2
		if obj[i] == '"' { // a string value: skip it
			k := i + 1
			for k < len(obj) && obj[k] != '"' {
				if obj[k] == '\\' {
					k++
				}
				k++
			}
			if k >= len(obj) {
				return false
			}
			i = k + 1
		} else {
			k := i
			for k < len(obj) && obj[k] != ',' && obj[k] != '}' {
				k++
			}
			if k == i || k >= len(obj) || !isJSONNumber(obj[i:k]) {
				return false
			}
			v, err := strconv.ParseFloat(string(obj[i:k]), 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return false
			}
			if len(key) > 0 && !math.IsInf(v, 0) {
				if nf == len(found) {
					return false
				}
				found[nf] = kv{key, v}
				nf++
			}
			i = k
		}
		if i >= len(obj) {
			return false
		}
		if obj[i] == '}' {
			if i != len(obj)-1 {
				return false
			}
			break
		}
		if obj[i] != ',' {
			return false
		}
		i++
		if i >= len(obj) {
			return false
		}
	}
	for _, f := range found[:nf] {
		fn(f.key, f.v)
	}
	return true
}

func eachNumberSlow(obj []byte, fn func(key []byte, v float64)) {
	if !json.Valid(obj) {
		return // as json_each: nothing from invalid JSON
	}
	dec := json.NewDecoder(strings.NewReader(string(obj)))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return
		}
		key, _ := kt.(string)
		if key == "" || len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
			continue
		}
		v, err := strconv.ParseFloat(string(raw), 64)
		if math.IsInf(v, 0) || (err != nil && !errors.Is(err, strconv.ErrRange)) {
			continue
		}
		fn([]byte(key), v)
	}
}

// isJSONNumber is a quick check of a number's bytes; strconv does the rest
// (it takes hex and inf too, which JSON does not).
func isJSONNumber(b []byte) bool {
	if b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return false
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			return false
		}
	}
	return true
}

// queryInt runs a query for one integer on the writer's driver connection.
func queryInt(ctx context.Context, conn driver.ExecerContext, q string) (int64, error) {
	qc, ok := conn.(driver.QueryerContext)
	if !ok {
		return 0, errors.New("sqlite driver lacks QueryerContext")
	}
	rows, err := qc.QueryContext(ctx, q, nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		return 0, err
	}
	v, _ := dest[0].(int64)
	return v, nil
}

// stage brings the rollups up to date with batch b, which the writer's
// transaction on conn has just inserted: it folds its rows and writes the
// buckets they close, in that transaction. committed must follow once it has
// committed.
func (r *rollups) stage(ctx context.Context, conn driver.ExecerContext, b *inlet.Batch) error {
	if r == nil || r.off {
		return nil
	}
	if r.staged || !r.valid {
		if err := r.load(ctx); err != nil {
			return fmt.Errorf("sqlite: rollups: %w", err)
		}
	}
	r.staged = true
	top, err := queryInt(ctx, conn, maxIDQuery)
	if err != nil {
		return fmt.Errorf("sqlite: rollups: %w", err)
	}
	if top-r.lastID == int64(len(b.Messages)) {
		for i := range b.Messages {
			m := &b.Messages[i]
			r.fold(m.Device, m.ReceivedAt, m.Fields)
		}
	} else if err := r.foldStored(ctx, conn, r.lastID); err != nil {
		// Some rows were not inserted (a seq already stored by another
		// writer): fold what the transaction holds.
		return fmt.Errorf("sqlite: rollups: %w", err)
	}
	r.lastID = top
	return r.write(ctx, conn)
}

// committed says the transaction stage wrote in has committed.
func (r *rollups) committed() {
	if r != nil {
		r.staged = false
	}
}

// foldStored folds the rows after id as the writer's transaction sees them.
func (r *rollups) foldStored(ctx context.Context, conn driver.ExecerContext, after int64) error {
	qc := conn.(driver.QueryerContext)
	rows, err := qc.QueryContext(ctx, "SELECT device, received_at, fields FROM messages WHERE id > ? ORDER BY id",
		[]driver.NamedValue{{Ordinal: 1, Value: after}})
	if err != nil {
		return err
	}
	defer rows.Close()
	dest := make([]driver.Value, 3)
	for {
		if err := rows.Next(dest); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		dev, _ := dest[0].(string)
		at, _ := dest[1].(int64)
		var f []byte
		switch v := dest[2].(type) {
		case string:
			f = []byte(v)
		case []byte:
			f = v
		}
		r.fold(dev, at, f)
	}
}

// load rebuilds the state from what is committed (at Open, after a crash, or
// after a commit that did not happen).
func (r *rollups) load(ctx context.Context) error {
	db := r.s.db
	var stateID int64
	if err := db.QueryRowContext(ctx, "SELECT frontier, last_id FROM rollup_state").Scan(&r.frontier, &stateID); err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	if err := db.QueryRowContext(ctx, maxIDQuery).Scan(&r.lastID); err != nil {
		return err
	}
	r.minutes, r.hours, r.lateMin, r.lateHour = buckets{}, buckets{}, buckets{}, buckets{}
	r.last = nil
	r.maxAt = r.frontier * 1e9
	hour := floorDiv(r.frontier, StepHour) * StepHour
	// The written minutes of the open hour.
	devices, err := r.s.rollupDevices(ctx)
	if err != nil {
		return err
	}
	for _, dev := range devices {
		err := r.s.Rollups(ctx, dev, StepMinute, hour, r.frontier, func(bucket int64, field string, n int64, lo, hi, sum float64) error {
			hb := r.hours.get(dev, hour)
			a := agg{n, lo, hi, sum}
			if field == "" {
				hb.rows.merge(a, float64(bucket-hour))
			} else {
				hb.field([]byte(field)).merge(a, 0)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// The messages not in rollups: received at or after the frontier, and any
	// after the state's last write. Receive times follow ids to within a batch
	// (timeSlack); a minute of margin costs little.
	lo, err := r.s.firstIDAt(ctx, (r.frontier-StepMinute)*1e9)
	if err != nil {
		return err
	}
	lo = min(lo, stateID)
	rows, err := db.QueryContext(ctx, `SELECT device, received_at, fields FROM messages
		WHERE id > ? AND (received_at >= ? OR id > ?) ORDER BY id`, lo, r.frontier*1e9, stateID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var dev string
		var at int64
		var f sql.RawBytes
		if err := rows.Scan(&dev, &at, &f); err != nil {
			return err
		}
		r.fold(dev, at, f)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	r.valid = true
	return nil
}

// row is one rollups row to write.
type row struct {
	device string
	step   int64
	bucket int64
	field  string
	agg
}

const rollupCols = 8

// write closes the buckets before the new frontier and writes them, the late
// rows' additions, and the state, when there is anything to write.
func (r *rollups) write(ctx context.Context, conn driver.ExecerContext) error {
	frontier := max(r.frontier, floorDiv(r.maxAt, flushEvery*1e9)*flushEvery)
	if frontier == r.frontier && len(r.lateMin) == 0 {
		return nil
	}
	r.last = nil
	var out []row
	emit := func(k devBucket, step int64, b *bucketAgg) {
		out = append(out, row{k.device, step, k.bucket, "", b.rows})
		for _, f := range b.fields {
			out = append(out, row{k.device, step, k.bucket, f.name, f.agg})
		}
	}
	for k, b := range r.lateMin {
		emit(k, StepMinute, b)
	}
	for k, b := range r.lateHour {
		emit(k, StepHour, b)
	}
	clear(r.lateMin)
	clear(r.lateHour)
	for k, b := range r.minutes {
		if k.bucket >= frontier {
			continue
		}
		emit(k, StepMinute, b)
		h := floorDiv(k.bucket, StepHour) * StepHour
		r.hours.get(k.device, h).merge(b, float64(k.bucket-h))
		delete(r.minutes, k)
	}
	hour := floorDiv(frontier, StepHour) * StepHour
	for k, b := range r.hours {
		if k.bucket < hour {
			emit(k, StepHour, b)
			delete(r.hours, k)
		}
	}
	r.frontier = frontier
	slices.SortFunc(out, func(a, b row) int {
		return cmp.Or(strings.Compare(a.device, b.device), cmp.Compare(a.step, b.step),
			cmp.Compare(a.bucket, b.bucket), strings.Compare(a.field, b.field))
	})
	for len(out) > 0 {
		n := upsertTiers[len(upsertTiers)-1]
		for _, t := range upsertTiers {
			if len(out) >= t {
				n = t
				break
			}
		}
		if err := r.upsert(ctx, conn, out[:n]); err != nil {
			return fmt.Errorf("sqlite: write rollups: %w", err)
		}
		out = out[n:]
	}
	_, err := conn.ExecContext(ctx, "UPDATE rollup_state SET frontier = ?, last_id = ?",
		[]driver.NamedValue{{Ordinal: 1, Value: r.frontier}, {Ordinal: 2, Value: r.lastID}})
	if err != nil {
		return fmt.Errorf("sqlite: write rollups: %w", err)
	}
	return nil
}

const upsertRollups = "INSERT INTO rollups (device, step, bucket, field, n, min, max, sum) VALUES "
const upsertRollupsTail = ` ON CONFLICT (device, step, bucket, field) DO UPDATE SET n = n + excluded.n,
 min = min(rollups.min, excluded.min), max = max(rollups.max, excluded.max), sum = rollups.sum + excluded.sum`

// upsertTiers are the row counts of the prepared upserts, largest first.
var upsertTiers = [...]int{64, 8, 1}

// prepared returns the upsert of n rows, prepared on the writer's connection
// once (closed with the store's other statements).
func (r *rollups) prepared(ctx context.Context, conn driver.ExecerContext, n int) (driver.StmtExecContext, error) {
	if st := r.stmts[n]; st != nil {
		return st, nil
	}
	prep, ok := conn.(driver.ConnPrepareContext)
	if !ok {
		return nil, errors.New("sqlite driver lacks ConnPrepareContext")
	}
	q := upsertRollups + strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?),", n), ",") + upsertRollupsTail
	st, err := prep.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	ex, ok := st.(driver.StmtExecContext)
	if !ok {
		st.Close()
		return nil, errors.New("sqlite driver statement lacks ExecContext")
	}
	if r.stmts == nil {
		r.stmts = make(map[int]driver.StmtExecContext)
	}
	r.stmts[n] = ex
	if r.s.ws != nil {
		r.s.ws.closers = append(r.s.ws.closers, st)
	}
	return ex, nil
}

func (r *rollups) upsert(ctx context.Context, conn driver.ExecerContext, rows []row) error {
	st, err := r.prepared(ctx, conn, len(rows))
	if err != nil {
		return err
	}
	if len(r.args) < len(rows)*rollupCols {
		r.args = make([]driver.NamedValue, len(rows)*rollupCols)
		for i := range r.args {
			r.args[i].Ordinal = i + 1
		}
	}
	n := 0
	set := func(v driver.Value) { r.args[n].Value = v; n++ }
	for i := range rows {
		w := &rows[i]
		set(w.device)
		set(w.step)
		set(w.bucket)
		set(w.field)
		set(w.n)
		set(w.min)
		set(w.max)
		set(w.sum)
	}
	_, err = st.ExecContext(ctx, r.args[:n])
	for i := range r.args[:n] {
		r.args[i].Value = nil
	}
	return err
}

// RollupFrontier returns the start (unix seconds) of the first minute whose
// rollups are not written yet: rollups cover what was received before it
// (hours: before its hour), the messages what was received after.
func (s *Store) RollupFrontier(ctx context.Context) (int64, error) {
	var f int64
	if err := s.db.QueryRowContext(ctx, "SELECT frontier FROM rollup_state").Scan(&f); err != nil {
		return 0, fmt.Errorf("sqlite: rollups: %w", err)
	}
	return f, nil
}

// Rollups calls fn for each rollup of device at step (StepMinute or StepHour)
// whose bucket starts in [from, to) (unix seconds), in bucket order and, within
// a bucket, field order; field "" is the bucket's rows, whose min, max and sum
// are receive times in seconds after the bucket's start.
func (s *Store) Rollups(ctx context.Context, device string, step, from, to int64,
	fn func(bucket int64, field string, n int64, min, max, sum float64) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT bucket, field, n, min, max, sum FROM rollups
		WHERE device = ? AND step = ? AND bucket >= ? AND bucket < ? ORDER BY bucket, field`, device, step, from, to)
	if err != nil {
		return fmt.Errorf("sqlite: rollups: %w", err)
	}
	defer rows.Close()
	var bucket, n int64
	var field string
	var lo, hi, sum float64
	for rows.Next() {
		if err := rows.Scan(&bucket, &field, &n, &lo, &hi, &sum); err != nil {
			return fmt.Errorf("sqlite: rollups: %w", err)
		}
		if err := fn(bucket, field, n, lo, hi, sum); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: rollups: %w", err)
	}
	return nil
}

// FirstReceived returns when the oldest row of device still stored, in the
// messages or in the rollups, was received (unix nanoseconds); ok is false when
// there is none.
func (s *Store) FirstReceived(ctx context.Context, device string) (at int64, ok bool, err error) {
	var raw, minute, hour sql.NullInt64
	err = s.db.QueryRowContext(ctx, `SELECT
		(SELECT received_at FROM messages WHERE device = ?1 ORDER BY id LIMIT 1),
		(SELECT bucket * 1000000000 + CAST(min * 1e9 AS INTEGER) FROM rollups WHERE device = ?1 AND step = 60 AND field = '' ORDER BY bucket LIMIT 1),
		(SELECT bucket * 1000000000 + CAST(min * 1e9 AS INTEGER) FROM rollups WHERE device = ?1 AND step = 3600 AND field = '' ORDER BY bucket LIMIT 1)`,
		device).Scan(&raw, &minute, &hour)
	if err != nil {
		return 0, false, fmt.Errorf("sqlite: first received: %w", err)
	}
	for _, v := range []sql.NullInt64{raw, minute, hour} {
		if v.Valid && (!ok || v.Int64 < at) {
			at, ok = v.Int64, true
		}
	}
	return at, ok, nil
}

// PruneRollups deletes the rollups of buckets that ended before the
// unix-nanosecond time before (serve --retain-rollups), and returns how many
// rows it deleted. A transaction deletes up to a day of minutes (or 60 days of
// hours) of up to 64 devices, so commits wait for it no longer than for a
// prune of messages.
func (s *Store) PruneRollups(ctx context.Context, before int64) (int64, error) {
	devices, err := s.rollupDevices(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune rollups: %w", err)
	}
	var deleted int64
	var tx *sql.Tx
	inTx := 0
	flush := func() error {
		if tx == nil {
			return nil
		}
		err := tx.Commit()
		tx, inTx = nil, 0
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
			return nil
		}
	}
	defer func() {
		if tx != nil {
			tx.Rollback()
		}
	}()
	for _, d := range devices {
		for _, step := range []int64{StepMinute, StepHour} {
			// Buckets that end at or before the bound (they start at
			// multiples of step).
			end := floorDiv(before, step*1e9) * step
			for {
				var first sql.NullInt64
				if err := s.db.QueryRowContext(ctx, "SELECT min(bucket) FROM rollups WHERE device = ? AND step = ?", d, step).Scan(&first); err != nil {
					return deleted, fmt.Errorf("sqlite: prune rollups: %w", err)
				}
				if !first.Valid || first.Int64 >= end {
					break
				}
				if tx == nil {
					if tx, err = s.db.BeginTx(ctx, nil); err != nil {
						return deleted, fmt.Errorf("sqlite: prune rollups: %w", err)
					}
				}
				to := min(end, first.Int64+1440*step)
				res, err := tx.ExecContext(ctx, "DELETE FROM rollups WHERE device = ? AND step = ? AND bucket < ?", d, step, to)
				if err != nil {
					return deleted, fmt.Errorf("sqlite: prune rollups of %s: %w", d, err)
				}
				n, _ := res.RowsAffected()
				deleted += n
				if inTx++; inTx >= 64 || to < end {
					if err := flush(); err != nil {
						return deleted, fmt.Errorf("sqlite: prune rollups: %w", err)
					}
				}
				if to == end {
					break
				}
			}
		}
	}
	if err := flush(); err != nil {
		return deleted, fmt.Errorf("sqlite: prune rollups: %w", err)
	}
	return deleted, nil
}

// rollupDevices lists the devices that have rollups, one primary-key seek each.
func (s *Store) rollupDevices(ctx context.Context) ([]string, error) {
	var out []string
	st, err := s.db.PrepareContext(ctx, "SELECT device FROM rollups WHERE device > ? ORDER BY device LIMIT 1")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	after := ""
	for first := true; ; first = false {
		var d string
		q := after
		if first {
			// "" is a device name too: start below every text.
			err = s.db.QueryRowContext(ctx, "SELECT device FROM rollups ORDER BY device LIMIT 1").Scan(&d)
		} else {
			err = st.QueryRowContext(ctx, q).Scan(&d)
		}
		if errors.Is(err, sql.ErrNoRows) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, d)
		after = d
	}
}

// SeqReceived returns when an acknowledged message was received (unix
// nanoseconds), by its key (device, boot, seq); ok is false when it is not
// stored (never received, or pruned).
func (s *Store) SeqReceived(ctx context.Context, device, boot string, seq int64) (at int64, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, "SELECT received_at FROM messages WHERE device = ? AND boot = ? AND seq = ?", device, boot, seq).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("sqlite: seq received: %w", err)
	}
	return at, true, nil
}

// maxIDQuery reads the highest message id from both halves of the layout
// (docs/schema.md): max over the view would read every row of both.
const maxIDQuery = "SELECT max(coalesce((SELECT max(id) FROM messages_recent), 0), coalesce((SELECT max(id) FROM messages_merged), 0))"
