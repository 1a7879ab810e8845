// Package postgres implements inlet.Store, inlet.AccountingStore and
// inlet.Reader on a PostgreSQL database (pgx v5) that several inlet nodes may
// share: the schema and its migrations (applied under an advisory lock), the
// refusal of a server whose commits are not durable, batch commits that count
// each device's loss against its locked row, ids handed out in commit order so
// that "after id N" never skips a row, the read queries behind export,
// devices, tail and the HTTP API (docs/scale.md), and the device tokens that
// every node on the database shares (inlet token, serve --require-token). It
// knows nothing of sockets or framing.
package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/inletdev/inlet"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// IsURL reports whether a --db value names a PostgreSQL database rather than
// a SQLite file.
func IsURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// ErrNotDurable is returned by Open when the server would report a commit
// before it is on disk.
var ErrNotDurable = errors.New("commits would not be durable")

// Options for Open.
type Options struct {
	ReadOnly bool // for export, devices and tail: no migration, no writer
	Logger   *slog.Logger
	// Insert selects how rows are inserted; the zero value, InsertCopy, is the
	// faster (BENCHMARKS.md). Both are kept so that the benchmark can compare them.
	Insert InsertMode
}

// InsertMode is how a batch's rows reach the messages table.
type InsertMode uint8

const (
	// InsertCopy COPYs plain rows straight into messages (they cannot conflict:
	// only acknowledged rows have a unique key) and inserts acknowledged rows
	// with INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING.
	InsertCopy InsertMode = iota
	// InsertUnnest inserts every row with INSERT … SELECT FROM unnest(…).
	InsertUnnest
)

// Store is an inlet.Store on one PostgreSQL database.
type Store struct {
	url  string
	pool *pgxpool.Pool // readers
	opt  Options

	wmu sync.Mutex // the writer's connection and state; one writer goroutine uses them
	w   *pgx.Conn
	// known holds, per device, the devices.version this store last committed:
	// the writer's ledger holds the state of that version. Another node's
	// commit raises the version, and the device is then read back.
	known map[string]int64
	buf   []inlet.Message // the batch being committed (CommitAccounted)
	// pending is the batch whose COMMIT failed without an answer, if any.
	pending     *pendingCommit
	afterCommit func() error // tests: called after a successful COMMIT
	// tests: called just before COMMIT (it may end tx, as a server that dies
	// meanwhile does)
	beforeCommit func(ctx context.Context, tx pgx.Tx)
}

// Open connects to the database at url (postgres://…) and, unless read-only,
// creates or migrates its schema and checks that commits are durable.
func Open(ctx context.Context, url string, opt Options) (*Store, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", Redact(url), err)
	}
	cfg.MaxConns = max(cfg.MaxConns, 8)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", Redact(url), err)
	}
	s := &Store{url: url, pool: pool, opt: opt, known: make(map[string]int64)}
	if err := s.init(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", Redact(url), err)
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	if s.opt.ReadOnly {
		v, err := schemaVersion(ctx, s.pool)
		if err != nil {
			return err
		}
		return checkVersion(v)
	}
	if err := migrate(ctx, s.pool, ladder); err != nil {
		return err
	}
	_, err := s.writer(ctx)
	return err
}

// Redact returns url without its password, for messages and logs.
func Redact(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil || cfg.Password == "" {
		return url
	}
	return strings.Replace(url, ":"+cfg.Password+"@", ":xxxxx@", 1)
}

// checkDurable refuses a session whose COMMIT would return before the
// transaction is on disk: synchronous_commit=off (set for the server, the
// database, the role or in the URL), or fsync=off.
func checkDurable(ctx context.Context, conn *pgx.Conn) error {
	var sc, fsync string
	if err := conn.QueryRow(ctx, "SELECT current_setting('synchronous_commit'), current_setting('fsync')").Scan(&sc, &fsync); err != nil {
		return fmt.Errorf("read synchronous_commit and fsync: %w", err)
	}
	if sc == "off" {
		return fmt.Errorf("%w: synchronous_commit is off for this connection, so a COMMIT returns before it is on disk, "+
			"and inlet acknowledges messages once their COMMIT returns. Set it on for inlet's database or role "+
			"(ALTER DATABASE name SET synchronous_commit = on, or ALTER ROLE), or in postgresql.conf, "+
			"and remove it from the URL's options", ErrNotDurable)
	}
	if fsync == "off" {
		return fmt.Errorf("%w: the server runs with fsync = off, so a committed transaction can be lost in a crash. "+
			"Set fsync = on in postgresql.conf and restart PostgreSQL", ErrNotDurable)
	}
	return nil
}

// writer returns the writer's connection, connecting (and checking that its
// commits are durable) when there is none or it broke.
func (s *Store) writer(ctx context.Context) (*pgx.Conn, error) {
	if s.w != nil && !s.w.IsClosed() {
		return s.w, nil
	}
	if s.w != nil {
		s.w.Close(ctx)
		s.w = nil
	}
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return nil, err
	}
	if err := checkDurable(ctx, conn); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	s.w = conn
	return conn, nil
}

// Ready reports whether the store can be used (/readyz): the writer's
// health is the commit writer's to report.
func (s *Store) Ready() bool { return s.pool != nil }

// Close closes the connections; it is safe to call twice.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.w != nil {
		s.w.Close(context.Background())
		s.w = nil
	}
	if s.pool != nil {
		s.pool.Close()
		s.pool = nil
	}
	return nil
}

// Commit writes a batch already accounted for by its writer (the state in it
// is taken as it is): messages, device and sequence state, in one transaction.
// A writer that shares the database with others uses CommitAccounted.
func (s *Store) Commit(ctx context.Context, b *inlet.Batch) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.pool == nil {
		return fmt.Errorf("postgres: commit: %w", inlet.ErrClosed)
	}
	conn, err := s.writer(ctx)
	if err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := s.writeBatch(ctx, tx, b); err != nil {
			return err
		}
		_, err := s.saveDevices(ctx, tx, b.Devices)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: commit batch: %w", err)
	}
	return nil
}

// CommitAccounted implements inlet.AccountingStore: in one transaction it
// locks the batch's devices (creating the rows of new ones), in device order
// so that two nodes never deadlock; reads back each device another node
// changed since this store last committed it (its version moved) and the
// sequences it needs; counts msgs against that state; writes messages, devices
// and sequences; and commits. Ledger l is updated only once the commit
// succeeded.
//
// A COMMIT whose answer is lost (the connection or the server died meanwhile)
// may have committed. The next call, the writer's retry of the same batch,
// first asks the server what became of that transaction (txid_status): if it
// committed, its result is returned rather than the batch stored twice.
func (s *Store) CommitAccounted(ctx context.Context, l *inlet.Ledger, msgs []inlet.Message) (*inlet.Batch, int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.pool == nil {
		return nil, 0, fmt.Errorf("postgres: commit: %w", inlet.ErrClosed)
	}
	if p := s.pending; p != nil {
		committed, err := s.resolve(ctx, p, len(msgs))
		if err != nil {
			return nil, 0, fmt.Errorf("postgres: commit: %w", err)
		}
		if committed {
			s.adopt(l, p)
			return p.batch, p.dups, nil
		}
	}
	conn, err := s.writer(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: commit: %w", err)
	}
	clear(s.buf)
	s.buf = append(s.buf[:0], msgs...)
	names := make([]string, 0, 16)
	seen := make(map[string]bool)
	for i := range msgs {
		if d := msgs[i].Device; !seen[d] {
			seen[d] = true
			names = append(names, d)
		}
	}
	slices.Sort(names)

	p := &pendingCommit{msgs: len(msgs)}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: commit batch: begin: %w", err)
	}
	err = func() error {
		if err := tx.QueryRow(ctx, "SELECT txid_current()").Scan(&p.xid); err != nil {
			return err
		}
		versions, err := lockDevices(ctx, tx, names)
		if err != nil {
			return err
		}
		if p.ledger, p.stale, err = s.ledgerFor(ctx, tx, l, versions, msgs); err != nil {
			return err
		}
		p.batch, p.dups = p.ledger.Account(s.buf)
		if err := s.writeBatch(ctx, tx, p.batch); err != nil {
			return err
		}
		p.versions, err = s.saveDevices(ctx, tx, p.batch.Devices)
		return err
	}()
	if err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return nil, 0, fmt.Errorf("postgres: commit batch: %w", err)
	}
	if s.beforeCommit != nil {
		s.beforeCommit(ctx, tx)
	}
	err = tx.Commit(ctx)
	if err == nil && s.afterCommit != nil {
		err = s.afterCommit() // tests: a COMMIT whose answer was lost
	}
	if err != nil {
		s.pending = p // committed or not: the retry asks
		return nil, 0, fmt.Errorf("postgres: commit batch: %w", err)
	}
	s.adopt(l, p)
	return p.batch, p.dups, nil
}

// pendingCommit is a batch whose COMMIT failed without saying whether it
// committed, kept for the retry.
type pendingCommit struct {
	xid      int64
	msgs     int // the batch's length, to check that the retry is the same batch
	batch    *inlet.Batch
	dups     int
	ledger   inlet.Ledger
	stale    map[string]bool
	versions map[string]int64
}

// resolve reports whether p's transaction committed, asking the server on a
// new connection; it clears s.pending once the answer is known.
func (s *Store) resolve(ctx context.Context, p *pendingCommit, msgs int) (bool, error) {
	if msgs != p.msgs {
		return false, fmt.Errorf("retry of a batch of %d messages after one of %d whose commit is unknown", msgs, p.msgs)
	}
	if s.w != nil {
		s.w.Close(ctx) // its state after the failure is unknown
		s.w = nil
	}
	conn, err := s.writer(ctx)
	if err != nil {
		return false, err
	}
	var status pgtype.Text
	if err := conn.QueryRow(ctx, "SELECT txid_status($1)", p.xid).Scan(&status); err != nil {
		return false, fmt.Errorf("status of transaction %d: %w", p.xid, err)
	}
	switch status.String {
	case "committed":
		// An xid is not proof on its own: a server that crashed before it
		// flushed any WAL of this transaction hands the same xid out again
		// after recovery, maybe to another node's transaction that commits.
		// So the batch's own rows must be there too.
		stored, err := batchStored(ctx, conn, p.batch)
		if err != nil {
			return false, fmt.Errorf("rows of transaction %d: %w", p.xid, err)
		}
		s.pending = nil
		return stored, nil
	case "in progress":
		return false, fmt.Errorf("transaction %d still in progress", p.xid)
	}
	s.pending = nil // aborted, or too old to know: not committed within this retry's lifetime
	return false, nil
}

// batchStored reports whether b's messages are in the store: every
// acknowledged one (device, boot, seq), and its first plain one (device and
// receive time, to the nanosecond). A batch is stored whole or not at all, so
// one plain row stands for all; an acknowledged message counts as stored even
// when another node stored it, which is what its ACK promises.
func batchStored(ctx context.Context, conn *pgx.Conn, b *inlet.Batch) (bool, error) {
	if b == nil {
		return false, nil
	}
	var devs, boots []string
	var seqs []int64
	var plain *inlet.Message
	for i := range b.Messages {
		m := &b.Messages[i]
		if m.Seq == 0 {
			if plain == nil {
				plain = m
			}
			continue
		}
		devs, boots, seqs = append(devs, m.Device), append(boots, m.Boot), append(seqs, m.Seq)
	}
	if len(seqs) > 0 {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM messages m
			JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS k(device, boot, seq)
			ON m.device = k.device AND m.boot = k.boot AND m.seq = k.seq`, devs, boots, seqs).Scan(&n); err != nil {
			return false, err
		}
		if n != len(seqs) {
			return false, nil
		}
	}
	if plain != nil {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM messages WHERE device = $1 AND received_at = $2 AND seq IS NULL)",
			plain.Device, plain.ReceivedAt).Scan(&ok); err != nil {
			return false, err
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// adopt takes a committed batch's state into the ledger and the known versions.
func (s *Store) adopt(l *inlet.Ledger, p *pendingCommit) {
	// A device read back from the store may have other sequences in memory
	// that are stale too.
	if len(p.stale) > 0 {
		for k := range l.Boots {
			if p.stale[k.Device] {
				delete(l.Boots, k)
			}
		}
	}
	for d, v := range p.versions {
		s.known[d] = v
	}
	for id, d := range p.ledger.Devices {
		l.Devices[id] = d
	}
	for k, bt := range p.ledger.Boots {
		l.Boots[k] = bt
	}
}

// lockDevices creates the rows of new devices and locks every device's row,
// both in device order, returning each row's version.
func lockDevices(ctx context.Context, tx pgx.Tx, names []string) (map[string]int64, error) {
	// A new device's row is created (empty) first, so that there is a row to
	// lock: two nodes taking a new device's first messages at once then queue
	// on it like on any other.
	if _, err := tx.Exec(ctx, `INSERT INTO devices (device, messages, first_seen, last_seen, gaps, missing, duplicates, resets)
		SELECT d, 0, 0, 0, 0, 0, 0, 0 FROM unnest($1::text[]) AS d ORDER BY d ON CONFLICT DO NOTHING`, names); err != nil {
		return nil, fmt.Errorf("create devices: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT device, version FROM devices WHERE device = ANY($1) ORDER BY device FOR UPDATE`, names)
	if err != nil {
		return nil, fmt.Errorf("lock devices: %w", err)
	}
	versions := make(map[string]int64, len(names))
	var d string
	var v int64
	_, err = pgx.ForEachRow(rows, []any{&d, &v}, func() error {
		versions[d] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lock devices: %w", err)
	}
	return versions, nil
}

// ledgerFor builds the state to count msgs against, inside the transaction
// that holds the devices' locks: l's copy of each device whose version is the
// one this store committed last, the stored state of the others (stale), and
// the sequences msgs continue, from l for the first and from the store for the
// second or when l lacks them.
func (s *Store) ledgerFor(ctx context.Context, tx pgx.Tx, l *inlet.Ledger, versions map[string]int64, msgs []inlet.Message) (inlet.Ledger, map[string]bool, error) {
	sl := inlet.Ledger{Devices: make(map[string]*inlet.Device, len(versions)), Boots: make(map[inlet.BootKey]*inlet.Boot)}
	stale := make(map[string]bool)
	var reload []string
	for id, v := range versions {
		if kv, ok := s.known[id]; ok && kv == v && l.Devices[id] != nil {
			d := *l.Devices[id]
			sl.Devices[id] = &d
			continue
		}
		stale[id] = true
		reload = append(reload, id)
	}
	if len(reload) > 0 {
		devs, err := s.queryDevices(ctx, tx, "WHERE device = ANY($1)", reload)
		if err != nil {
			return sl, nil, err
		}
		for i := range devs {
			d := devs[i]
			sl.Devices[d.ID] = &d
		}
	}
	var fetchDev, fetchBoot []string
	want := make(map[inlet.BootKey]bool)
	for i := range msgs {
		m := &msgs[i]
		if m.Seq == 0 {
			continue
		}
		k := inlet.BootKey{Device: m.Device, Boot: m.Boot}
		if want[k] {
			continue
		}
		want[k] = true
		if bt := l.Boots[k]; bt != nil && !stale[m.Device] {
			c := *bt
			c.Missing = slices.Clone(bt.Missing)
			sl.Boots[k] = &c
			continue
		}
		fetchDev, fetchBoot = append(fetchDev, k.Device), append(fetchBoot, k.Boot)
	}
	if len(fetchDev) > 0 {
		bs, _, err := queryBoots(ctx, tx, `SELECT b.device, b.boot, last_seq, missing::text, messages, first_seen, last_seen, 0
			FROM boots b JOIN unnest($1::text[], $2::text[]) AS k(device, boot) ON b.device = k.device AND b.boot = k.boot`,
			fetchDev, fetchBoot)
		if err != nil {
			return sl, nil, err
		}
		for i := range bs {
			bt := bs[i]
			sl.Boots[inlet.BootKey{Device: bt.Device, Boot: bt.Boot}] = &bt
		}
	}
	return sl, stale, nil
}

var messageCols = []string{"received_at", "device", "transport", "remote", "boot", "seq", "payload", "fields"}

// writeBatch inserts b's messages, after taking the commit lock, and saves
// its sequences. The commit lock (a transaction advisory lock, held to COMMIT)
// makes ids from messages_id_seq commit in order: a reader that has seen id N
// has seen every committed id below it (docs/scale.md, "Readers").
func (s *Store) writeBatch(ctx context.Context, tx pgx.Tx, b *inlet.Batch) error {
	// Rows of one device together (their order kept): the device index takes
	// runs of appends rather than scattered inserts.
	slices.SortStableFunc(b.Messages, func(x, y inlet.Message) int { return cmp.Compare(x.Device, y.Device) })
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(lockCommit)); err != nil {
		return fmt.Errorf("commit lock: %w", err)
	}
	msgs := b.Messages
	if s.opt.Insert == InsertCopy {
		var plain, acked []inlet.Message
		for i := range msgs {
			if msgs[i].Seq == 0 {
				plain = append(plain, msgs[i])
			} else {
				acked = append(acked, msgs[i])
			}
		}
		if len(plain) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"messages"}, messageCols, &copySource{msgs: plain, i: -1}); err != nil {
				return fmt.Errorf("copy messages: %w", err)
			}
		}
		msgs = acked
	}
	if len(msgs) > 0 {
		if err := insertUnnest(ctx, tx, msgs); err != nil {
			return err
		}
	}
	return saveBoots(ctx, tx, b.Boots)
}

// copySource feeds messages to COPY.
type copySource struct {
	msgs []inlet.Message
	i    int
	row  [8]any
}

func (c *copySource) Next() bool { c.i++; return c.i < len(c.msgs) }
func (c *copySource) Err() error { return nil }
func (c *copySource) Values() ([]any, error) {
	m := &c.msgs[c.i]
	c.row = [8]any{m.ReceivedAt, m.Device, m.Transport.String(), m.Remote.String(), nil, nil, payloadOf(m), fieldsOf(m)}
	if m.Seq != 0 {
		c.row[4], c.row[5] = m.Boot, m.Seq
	}
	return c.row[:], nil
}

func payloadOf(m *inlet.Message) []byte {
	if m.Payload == nil {
		return []byte{} // NOT NULL
	}
	return m.Payload
}

func fieldsOf(m *inlet.Message) *string {
	if m.Fields == nil {
		return nil
	}
	f := string(m.Fields)
	return &f
}

// insertUnnest inserts msgs with one INSERT … SELECT FROM unnest(…) in their
// order; a row whose (device, boot, seq) is already stored is skipped, the
// last word on duplicates across nodes.
func insertUnnest(ctx context.Context, tx pgx.Tx, msgs []inlet.Message) error {
	n := len(msgs)
	at, seq := make([]int64, n), make([]*int64, n)
	dev, tr, rem := make([]string, n), make([]string, n), make([]string, n)
	boot, fields := make([]*string, n), make([]*string, n)
	pay := make([][]byte, n)
	for i := range msgs {
		m := &msgs[i]
		at[i], dev[i], tr[i], rem[i], pay[i], fields[i] = m.ReceivedAt, m.Device, m.Transport.String(), m.Remote.String(), payloadOf(m), fieldsOf(m)
		if m.Seq != 0 {
			boot[i], seq[i] = &m.Boot, &m.Seq
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO messages (received_at, device, transport, remote, boot, seq, payload, fields)
		SELECT at, dev, tr, rem, boot, seq, pay, fields::json FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[],
			$5::text[], $6::bigint[], $7::bytea[], $8::text[]) WITH ORDINALITY AS r(at, dev, tr, rem, boot, seq, pay, fields, n)
		ORDER BY n ON CONFLICT DO NOTHING`, at, dev, tr, rem, boot, seq, pay, fields)
	if err != nil {
		return fmt.Errorf("insert messages: %w", err)
	}
	return nil
}

// saveDevices writes the devices' state and raises their versions, returning
// the new versions.
func (s *Store) saveDevices(ctx context.Context, tx pgx.Tx, devs []inlet.Device) (map[string]int64, error) {
	n := len(devs)
	id, kind := make([]string, n), make([]string, n)
	var nums [7][]int64
	for j := range nums {
		nums[j] = make([]int64, n)
	}
	last, low, seen := make([]*int64, n), make([]*int64, n), make([]*int64, n)
	lastBoot, counting := make([]*string, n), make([]*string, n)
	for i := range devs {
		d := &devs[i]
		id[i], kind[i] = d.ID, d.KindName()
		l, _ := d.Reported() // 0 for a values device: its loss is unknown
		for j, v := range [...]int64{d.Messages, d.FirstSeen, d.LastSeen, l.Gaps, l.Missing, l.Duplicates, l.Resets} {
			nums[j][i] = v
		}
		if d.Run.Active {
			h, lo, se := d.Run.High, d.Run.Low, int64(d.Run.Seen)
			last[i], low[i], seen[i] = &h, &lo, &se
		}
		if d.LastBoot != "" {
			lb := d.LastBoot
			lastBoot[i] = &lb
		}
		if !d.Acked() {
			c := string(d.AppendCounting(nil))
			counting[i] = &c
		}
	}
	rows, err := tx.Query(ctx, `INSERT INTO devices AS d (device, messages, first_seen, last_seen, gaps, missing, duplicates, resets,
			last_counter, run_low, run_seen, last_boot, kind, counting, version)
		SELECT *, 1 FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
			$8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::text[], $14::text[])
		ON CONFLICT (device) DO UPDATE SET messages = excluded.messages, first_seen = excluded.first_seen,
			last_seen = excluded.last_seen, gaps = excluded.gaps, missing = excluded.missing, duplicates = excluded.duplicates,
			resets = excluded.resets, last_counter = excluded.last_counter, run_low = excluded.run_low, run_seen = excluded.run_seen,
			last_boot = excluded.last_boot, kind = excluded.kind, counting = excluded.counting, version = d.version + 1
		RETURNING device, version`,
		id, nums[0], nums[1], nums[2], nums[3], nums[4], nums[5], nums[6], last, low, seen, lastBoot, kind, counting)
	if err != nil {
		return nil, fmt.Errorf("save devices: %w", err)
	}
	versions := make(map[string]int64, n)
	var d string
	var v int64
	if _, err := pgx.ForEachRow(rows, []any{&d, &v}, func() error { versions[d] = v; return nil }); err != nil {
		return nil, fmt.Errorf("save devices: %w", err)
	}
	return versions, nil
}

func saveBoots(ctx context.Context, tx pgx.Tx, boots []inlet.Boot) error {
	if len(boots) == 0 {
		return nil
	}
	n := len(boots)
	dev, boot, missing := make([]string, n), make([]string, n), make([]string, n)
	var nums [4][]int64
	for j := range nums {
		nums[j] = make([]int64, n)
	}
	for i := range boots {
		b := &boots[i]
		dev[i], boot[i], missing[i] = b.Device, b.Boot, string(appendRanges(nil, b.Missing))
		nums[0][i], nums[1][i], nums[2][i], nums[3][i] = b.Last, b.Messages, b.FirstSeen, b.LastSeen
	}
	_, err := tx.Exec(ctx, `INSERT INTO boots (device, boot, last_seq, missing, messages, first_seen, last_seen)
		SELECT dev, boot, last, missing::jsonb, msgs, first, lastseen FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[],
			$5::bigint[], $6::bigint[], $7::bigint[]) AS u(dev, boot, last, missing, msgs, first, lastseen)
		ON CONFLICT (device, boot) DO UPDATE SET last_seq = excluded.last_seq, missing = excluded.missing,
			messages = excluded.messages, first_seen = excluded.first_seen, last_seen = excluded.last_seen`,
		dev, boot, nums[0], missing, nums[1], nums[2], nums[3])
	if err != nil {
		return fmt.Errorf("save boots: %w", err)
	}
	return nil
}

// appendRanges is the stored form of missing ranges: [[from, to], ...].
func appendRanges(b []byte, rs []inlet.SeqRange) []byte {
	b = append(b, '[')
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, r.From, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, r.To, 10)
		b = append(b, ']')
	}
	return append(b, ']')
}

var (
	_ inlet.AccountingStore = (*Store)(nil)
	_ inlet.Reader          = (*Store)(nil)
)
