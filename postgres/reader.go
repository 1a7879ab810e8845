package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/inletdev/inlet"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// querier is a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (s *Store) q() (querier, error) {
	if s.pool == nil {
		return nil, inlet.ErrClosed
	}
	return s.pool, nil
}

const deviceColumns = `device, messages, first_seen, last_seen, gaps, missing, duplicates, resets,
	last_counter, run_low, run_seen, last_boot, kind, counting`

// Devices returns every device's persisted state, ordered by device.
func (s *Store) Devices(ctx context.Context) ([]inlet.Device, error) {
	q, err := s.q()
	if err != nil {
		return nil, fmt.Errorf("postgres: devices: %w", err)
	}
	return s.queryDevices(ctx, q, "")
}

func (s *Store) queryDevices(ctx context.Context, q querier, where string, args ...any) ([]inlet.Device, error) {
	rows, err := q.Query(ctx, "SELECT "+deviceColumns+" FROM devices "+where+" ORDER BY device", args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: devices: %w", err)
	}
	var out []inlet.Device
	var d inlet.Device
	var last, low, seen pgtype.Int8
	var lastBoot, counting pgtype.Text
	var kind string
	_, err = pgx.ForEachRow(rows, []any{&d.ID, &d.Messages, &d.FirstSeen, &d.LastSeen, &d.Gaps, &d.Missing, &d.Duplicates,
		&d.Resets, &last, &low, &seen, &lastBoot, &kind, &counting}, func() error {
		c := d
		if kind == "counter" {
			c.Kind = inlet.KindCounter
		}
		if counting.Valid {
			if err := c.ParseCounting(counting.String); err != nil {
				return fmt.Errorf("%s: counting %q: %w", c.ID, counting.String, err)
			}
		}
		if last.Valid {
			c.Run = inlet.CounterRun{Active: true, High: last.Int64, Low: low.Int64, Seen: uint64(seen.Int64)}
		}
		c.LastBoot = lastBoot.String
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: devices: %w", err)
	}
	return out, nil
}

const bootColumns = "device, boot, last_seq, missing::text, messages, first_seen, last_seen"

// Boots returns the acknowledged-mode state of every (device, boot).
func (s *Store) Boots(ctx context.Context) ([]inlet.Boot, error) {
	q, err := s.q()
	if err != nil {
		return nil, fmt.Errorf("postgres: boots: %w", err)
	}
	bs, _, err := queryBoots(ctx, q, "SELECT "+bootColumns+", 0 FROM boots ORDER BY device, first_seen, boot")
	return bs, err
}

// Boot returns one sequence's persisted state.
func (s *Store) Boot(ctx context.Context, device, boot string) (inlet.Boot, bool, error) {
	q, err := s.q()
	if err != nil {
		return inlet.Boot{}, false, fmt.Errorf("postgres: boot: %w", err)
	}
	bs, _, err := queryBoots(ctx, q, "SELECT "+bootColumns+", 0 FROM boots WHERE device = $1 AND boot = $2", device, boot)
	if err != nil || len(bs) == 0 {
		return inlet.Boot{}, false, err
	}
	return bs[0], true, nil
}

// RecentBoots returns every device's limit most recently seen boots (oldest
// first) and each device's number of boots in all.
func (s *Store) RecentBoots(ctx context.Context, limit int) ([]inlet.Boot, map[string]int64, error) {
	q, err := s.q()
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: boots: %w", err)
	}
	return queryBoots(ctx, q, `SELECT `+bootColumns+`, total FROM
		(SELECT *, row_number() OVER (PARTITION BY device ORDER BY last_seen DESC, boot) AS n,
		 count(*) OVER (PARTITION BY device) AS total FROM boots) b
		WHERE n <= $1 ORDER BY device, first_seen, boot`, limit)
}

// DeviceBoots returns every boot of one device, oldest first.
func (s *Store) DeviceBoots(ctx context.Context, device string) ([]inlet.Boot, error) {
	q, err := s.q()
	if err != nil {
		return nil, fmt.Errorf("postgres: boots: %w", err)
	}
	bs, _, err := queryBoots(ctx, q, "SELECT "+bootColumns+", 0 FROM boots WHERE device = $1 ORDER BY first_seen, boot", device)
	return bs, err
}

func queryBoots(ctx context.Context, q querier, query string, args ...any) ([]inlet.Boot, map[string]int64, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: boots: %w", err)
	}
	var out []inlet.Boot
	totals := make(map[string]int64)
	var b inlet.Boot
	var missing string
	var total int64
	_, err = pgx.ForEachRow(rows, []any{&b.Device, &b.Boot, &b.Last, &missing, &b.Messages, &b.FirstSeen, &b.LastSeen, &total}, func() error {
		var rs [][2]int64
		if err := json.Unmarshal([]byte(missing), &rs); err != nil {
			return fmt.Errorf("%s/%s: missing ranges: %w", b.Device, b.Boot, err)
		}
		c := b
		c.Missing = nil
		for _, r := range rs {
			c.Missing = append(c.Missing, inlet.SeqRange{From: r[0], To: r[1]})
		}
		totals[c.Device] = total
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: boots: %w", err)
	}
	return out, totals, nil
}

const messageColumns = "id, received_at, device, transport, remote, boot, seq, payload, fields::text"

// Messages calls fn for each stored message matching q, in id order,
// streaming. Ids commit in order (writeBatch), so a reader paging with
// AfterID never skips a row another node commits late.
func (s *Store) Messages(ctx context.Context, q inlet.Query, fn func(*inlet.Stored) error) error {
	db, err := s.q()
	if err != nil {
		return fmt.Errorf("postgres: messages: %w", err)
	}
	where, args := []string{"id > $1"}, []any{q.AfterID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.Device != "" {
		add("device = $%d", q.Device)
	}
	if q.Since != 0 {
		add("received_at >= $%d", q.Since)
	}
	if q.Until != 0 {
		add("received_at < $%d", q.Until)
	}
	cond := strings.Join(where, " AND ")
	if q.Limit > 0 && q.Last {
		// The newest Limit rows: find the oldest of them, then read forward.
		var first pgtype.Int8
		err := db.QueryRow(ctx, fmt.Sprintf("SELECT id FROM messages WHERE %s ORDER BY id DESC LIMIT 1 OFFSET %d",
			cond, q.Limit-1), args...).Scan(&first)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: messages: %w", err)
		}
		if first.Valid {
			args[0] = first.Int64 - 1
		}
	}
	query := "SELECT " + messageColumns + " FROM messages WHERE " + cond + " ORDER BY id"
	if q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("postgres: messages: %w", err)
	}
	defer rows.Close()
	var m inlet.Stored
	for rows.Next() {
		if err := scanMessage(rows, &m); err != nil {
			return fmt.Errorf("postgres: messages: %w", err)
		}
		if err := fn(&m); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: messages: %w", err)
	}
	return nil
}

func scanMessage(rows pgx.Rows, m *inlet.Stored) error {
	var transport, remote string
	var boot, fields pgtype.Text
	var seq pgtype.Int8
	*m = inlet.Stored{}
	if err := rows.Scan(&m.ID, &m.ReceivedAt, &m.Device, &transport, &remote, &boot, &seq, &m.Payload, &fields); err != nil {
		return err
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
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	return nil
}

// LastID returns the highest message id committed, 0 when there is none.
func (s *Store) LastID(ctx context.Context) (int64, error) {
	db, err := s.q()
	if err != nil {
		return 0, fmt.Errorf("postgres: last id: %w", err)
	}
	var id pgtype.Int8
	if err := db.QueryRow(ctx, "SELECT max(id) FROM messages").Scan(&id); err != nil {
		return 0, fmt.Errorf("postgres: last id: %w", err)
	}
	return id.Int64, nil
}

// Latest returns the newest message of every device, one index lookup each.
func (s *Store) Latest(ctx context.Context) ([]inlet.Stored, error) {
	db, err := s.q()
	if err != nil {
		return nil, fmt.Errorf("postgres: latest: %w", err)
	}
	rows, err := db.Query(ctx, "SELECT m."+strings.ReplaceAll(messageColumns, ", ", ", m.")+` FROM devices d
		CROSS JOIN LATERAL (SELECT * FROM messages WHERE device = d.device ORDER BY id DESC LIMIT 1) m ORDER BY m.id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: latest: %w", err)
	}
	defer rows.Close()
	var out []inlet.Stored
	for rows.Next() {
		var m inlet.Stored
		if err := scanMessage(rows, &m); err != nil {
			return nil, fmt.Errorf("postgres: latest: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: latest: %w", err)
	}
	return out, nil
}

// Prune deletes the messages received before before (unix nanoseconds), in
// transactions of at most 10,000 rows so that writers are never held up long;
// the devices' accounting is kept. It returns how many it deleted.
func (s *Store) Prune(ctx context.Context, before int64) (int64, error) {
	db, err := s.q()
	if err != nil {
		return 0, fmt.Errorf("postgres: prune: %w", err)
	}
	var n int64
	for {
		tag, err := db.Exec(ctx, `DELETE FROM messages WHERE id IN
			(SELECT id FROM messages WHERE received_at < $1 ORDER BY id LIMIT 10000)`, before)
		if err != nil {
			return n, fmt.Errorf("postgres: prune: %w", err)
		}
		n += tag.RowsAffected()
		if tag.RowsAffected() < 10000 {
			return n, nil
		}
	}
}
