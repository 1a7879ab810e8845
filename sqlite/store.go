// Package sqlite implements inlet.Store on an embedded SQLite database (the pure-Go
// modernc.org/sqlite driver, so the binary needs no cgo): the schema and its
// migrations, batch commits in WAL mode with synchronous=FULL, and the read
// queries behind export and devices. It knows nothing of sockets or framing.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/inletdev/inlet"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed schema.sql
var schema string

// schemaVersion is stored in PRAGMA user_version.
const schemaVersion = 1

// rowsPerInsert is how many rows one multi-row INSERT carries; it cuts the
// per-statement overhead that dominates small rows (see BENCHMARKS.md).
const rowsPerInsert = 32

const insertCols = "INSERT INTO messages (received_at, device, transport, remote, boot, seq, payload, fields) VALUES "
const insertRow = "(?,?,?,?,?,?,?,?)"
const colsPerRow = 8

const upsertDevice = `INSERT INTO devices (device, messages, first_seen, last_seen, gaps, missing, duplicates, resets, last_counter, run_low, run_seen)
VALUES (?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (device) DO UPDATE SET messages=excluded.messages, first_seen=excluded.first_seen,
 last_seen=excluded.last_seen, gaps=excluded.gaps, missing=excluded.missing, duplicates=excluded.duplicates,
 resets=excluded.resets, last_counter=excluded.last_counter, run_low=excluded.run_low, run_seen=excluded.run_seen`

// Store is an inlet.Store backed by one SQLite file.
type Store struct {
	db *sql.DB // readers
	w  *sql.Conn
	// Prepared on w, used only by Commit (one writer goroutine).
	insertMany, insertOne, upsert *sql.Stmt
	args                          []any
}

// Options for Open.
type Options struct {
	ReadOnly bool // for export and devices while a server writes; no migration
}

func dsn(path string, readOnly bool) string {
	p := []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)"}
	if readOnly {
		p = append(p, "query_only(1)")
	}
	var b strings.Builder
	b.WriteString("file:")
	b.WriteString(path)
	for i, v := range p {
		if i == 0 {
			b.WriteString("?")
		} else {
			b.WriteString("&")
		}
		b.WriteString("_pragma=")
		b.WriteString(v)
	}
	return b.String()
}

// Open opens (and creates or migrates, unless read-only) the database at path.
func Open(ctx context.Context, path string, opt Options) (*Store, error) {
	if opt.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("sqlite: no database at %s: %w", path, err)
		}
	}
	db, err := sql.Open("sqlite", dsn(path, opt.ReadOnly))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := s.init(ctx, opt.ReadOnly); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) init(ctx context.Context, readOnly bool) error {
	var version int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if readOnly {
		if version != schemaVersion {
			return fmt.Errorf("not an inlet database (schema version %d, want %d)", version, schemaVersion)
		}
		return nil
	}
	switch version {
	case schemaVersion:
	case 0:
		var tables int
		if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
			return err
		}
		if tables != 0 {
			return errors.New("the file holds another database (tables without an inlet schema version)")
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, schema); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	default:
		return fmt.Errorf("schema version %d is newer than this inlet understands (%d)", version, schemaVersion)
	}
	w, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	s.w = w
	many := insertCols + strings.TrimSuffix(strings.Repeat(insertRow+",", rowsPerInsert), ",")
	if s.insertMany, err = w.PrepareContext(ctx, many); err != nil {
		return err
	}
	if s.insertOne, err = w.PrepareContext(ctx, insertCols+insertRow); err != nil {
		return err
	}
	if s.upsert, err = w.PrepareContext(ctx, upsertDevice); err != nil {
		return err
	}
	s.args = make([]any, 0, rowsPerInsert*colsPerRow)
	return nil
}

// Commit writes a batch in one transaction; it returns once the transaction is
// durable (WAL, synchronous=FULL). It reorders b.Messages: rows of one device go
// in together (keeping their order), so the device index takes one run of appends
// per device instead of a B-tree seek per row, which halves the cost of that
// index (BENCHMARKS.md). Ids therefore follow arrival order per device, and across
// devices to within one batch.
func (s *Store) Commit(ctx context.Context, b *inlet.Batch) (err error) {
	if s.w == nil {
		return fmt.Errorf("sqlite: commit: %w", inlet.ErrClosed)
	}
	slices.SortStableFunc(b.Messages, func(x, y inlet.Message) int { return cmp.Compare(x.Device, y.Device) })
	if _, err := s.w.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer func() {
		if err != nil {
			// A failed COMMIT may have rolled back already; ignore that error.
			s.w.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	msgs := b.Messages
	for len(msgs) >= rowsPerInsert {
		if err := s.exec(ctx, s.insertMany, msgs[:rowsPerInsert]); err != nil {
			return err
		}
		msgs = msgs[rowsPerInsert:]
	}
	for i := range msgs {
		if err := s.exec(ctx, s.insertOne, msgs[i:i+1]); err != nil {
			return err
		}
	}
	for i := range b.Devices {
		d := &b.Devices[i]
		var last, low, seen any
		if d.Run.Active {
			last, low, seen = d.Run.High, d.Run.Low, int64(d.Run.Seen)
		}
		if _, err := s.upsert.ExecContext(ctx, d.ID, d.Messages, d.FirstSeen, d.LastSeen, d.Gaps, d.Missing,
			d.Duplicates, d.Resets, last, low, seen); err != nil {
			return fmt.Errorf("sqlite: save device %s: %w", d.ID, err)
		}
	}
	if _, err := s.w.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("sqlite: commit batch: %w", err)
	}
	return nil
}

func (s *Store) exec(ctx context.Context, st *sql.Stmt, msgs []inlet.Message) error {
	args := s.args[:0]
	for i := range msgs {
		m := &msgs[i]
		var boot, seq, fields any
		if m.Boot != "" {
			boot = m.Boot
		}
		if m.Seq != 0 {
			seq = m.Seq
		}
		if m.Fields != nil {
			fields = string(m.Fields) // TEXT, so json_extract reads it as JSON, not JSONB
		}
		args = append(args, m.ReceivedAt, m.Device, m.Transport.String(), m.Remote.String(), boot, seq, m.Payload, fields)
	}
	_, err := st.ExecContext(ctx, args...)
	clear(args)
	if err != nil {
		return fmt.Errorf("sqlite: insert messages: %w", err)
	}
	return nil
}

// Devices returns every device's persisted state, ordered by device.
func (s *Store) Devices(ctx context.Context) ([]inlet.Device, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT device, messages, first_seen, last_seen, gaps, missing, duplicates, resets,
		last_counter, run_low, run_seen FROM devices ORDER BY device`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: devices: %w", err)
	}
	defer rows.Close()
	var out []inlet.Device
	for rows.Next() {
		var d inlet.Device
		var last, low, seen sql.NullInt64
		if err := rows.Scan(&d.ID, &d.Messages, &d.FirstSeen, &d.LastSeen, &d.Gaps, &d.Missing, &d.Duplicates,
			&d.Resets, &last, &low, &seen); err != nil {
			return nil, fmt.Errorf("sqlite: devices: %w", err)
		}
		if last.Valid {
			d.Run = inlet.CounterRun{Active: true, High: last.Int64, Low: low.Int64, Seen: uint64(seen.Int64)}
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: devices: %w", err)
	}
	return out, nil
}

// timeSlack bounds how far received_at may run out of id order: rows are stamped
// as they enter the commit queue and reordered only within one batch.
const timeSlack = int64(1e9)

// firstIDAt finds, by binary search over the id order, an id at or before the
// first row received at or after t, without an index on received_at.
func (s *Store) firstIDAt(ctx context.Context, t int64) (int64, error) {
	var lo, hi sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT min(id), max(id) FROM messages").Scan(&lo, &hi); err != nil {
		return 0, err
	}
	if !lo.Valid {
		return 0, nil
	}
	target := t - timeSlack
	l, h := lo.Int64, hi.Int64 // invariant: the answer is in [l, h]
	st, err := s.db.PrepareContext(ctx, "SELECT id, received_at FROM messages WHERE id >= ? ORDER BY id LIMIT 1")
	if err != nil {
		return 0, err
	}
	defer st.Close()
	for l < h {
		mid := l + (h-l)/2
		var id, at int64
		if err := st.QueryRowContext(ctx, mid).Scan(&id, &at); err != nil {
			return 0, err
		}
		if at < target {
			l = id + 1
		} else {
			h = mid
		}
	}
	return l - 1, nil
}

// Messages calls fn for each stored message matching q, in id order. It streams:
// memory stays bounded whatever the number of rows.
func (s *Store) Messages(ctx context.Context, q inlet.Query, fn func(*inlet.Stored) error) error {
	after := q.AfterID
	if q.Since != 0 {
		id, err := s.firstIDAt(ctx, q.Since)
		if err != nil {
			return fmt.Errorf("sqlite: messages: %w", err)
		}
		after = max(after, id)
	}
	var where []string
	args := []any{after}
	where = append(where, "id > ?")
	if q.Device != "" {
		where = append(where, "device = ?")
		args = append(args, q.Device)
	}
	if q.Since != 0 {
		where = append(where, "received_at >= ?")
		args = append(args, q.Since)
	}
	if q.Until != 0 {
		where = append(where, "received_at < ?")
		args = append(args, q.Until)
	}
	query := "SELECT id, received_at, device, transport, remote, boot, seq, payload, fields FROM messages WHERE " +
		strings.Join(where, " AND ") + " ORDER BY id"
	if q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("sqlite: messages: %w", err)
	}
	defer rows.Close()
	var m inlet.Stored
	for rows.Next() {
		var transport, remote string
		var boot, fields sql.NullString
		var seq sql.NullInt64
		m = inlet.Stored{}
		if err := rows.Scan(&m.ID, &m.ReceivedAt, &m.Device, &transport, &remote, &boot, &seq, &m.Payload, &fields); err != nil {
			return fmt.Errorf("sqlite: messages: %w", err)
		}
		switch transport {
		case "tcp":
			m.Transport = inlet.TCP
		case "udp":
			m.Transport = inlet.UDP
		}
		m.Remote, _ = netip.ParseAddrPort(remote)
		m.Boot, m.Seq = boot.String, seq.Int64
		if fields.Valid {
			m.Fields = []byte(fields.String)
		}
		if err := fn(&m); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: messages: %w", err)
	}
	return nil
}

// Close closes the database; it is safe to call twice.
func (s *Store) Close() error {
	if s.w != nil {
		s.insertMany.Close()
		s.insertOne.Close()
		s.upsert.Close()
		s.w.Close()
		s.w = nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}
