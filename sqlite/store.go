// Package sqlite implements inlet.Store on an embedded SQLite database (the pure-Go
// modernc.org/sqlite driver, so the binary needs no cgo): the schema and its
// migrations, batch commits in WAL mode with synchronous=FULL, and the read
// queries behind export and devices. It knows nothing of sockets or framing.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/inletdev/inlet"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// insertTiers are the row counts of the prepared multi-row INSERTs, largest
// first: a run of rows goes in as many of the largest as fit, then the next.
// Multi-row statements cut the per-statement overhead that dominates small rows;
// 128 rows a statement costs 9% less CPU per row than 32 in 8192-row batches, and
// the smaller tiers keep a 100-row batch from falling back to single rows
// (BENCHMARKS.md).
var insertTiers = [...]int{128, 32, 8, 1}

// rowsPerInsert is the largest tier.
const rowsPerInsert = 128

// Two row shapes: plain-mode rows leave boot and seq NULL without binding them
// (binding NULLs cost a tenth of the commit), acknowledged rows carry them. Both
// go into messages_recent, which has no index: a commit appends to one B-tree
// whatever the number of devices in it (docs/schema.md, "How rows are stored").
// Ids are bound, continuing messages_merged's.
const (
	insertPlain = "INSERT INTO messages_recent (id, received_at, device, transport, remote, payload, fields) VALUES "
	rowPlain    = "(?,?,?,?,?,?,?)"
	colsPlain   = 7
	insertAcked = "INSERT INTO messages_recent (id, received_at, device, transport, remote, boot, seq, payload, fields) VALUES "
	rowAcked    = "(?,?,?,?,?,?,?,?,?)"
	colsAcked   = 9
)

// The state of the devices and boots a commit touched is appended to
// state_log, one row each; stateTiers are its multi-row statements.
const (
	insertState = `INSERT INTO state_log (id, device, boot, messages, first_seen, last_seen, gaps, missing, duplicates, resets,
 last_counter, run_low, run_seen, last_boot, kind, counting, last_seq, ranges) VALUES `
	rowState  = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
	colsState = 18
)

var stateTiers = [...]int{32, 8, 1}

// A batch with at least mergePerDevice rows per device in it (and directMinRows
// in all) goes straight into the indexed tables, as a merge would put it: its
// index leaves are written once for many rows already, and copying it through
// messages_recent would only cost CPU. Its transaction merges whatever the
// recent half holds first, so the halves keep their order.
const (
	directMinRows     = 256
	insertMerged      = "INSERT INTO messages_merged (id, received_at, device, transport, remote, boot, seq, payload, fields) VALUES "
	insertMergedPlain = "INSERT INTO messages_merged (id, received_at, device, transport, remote, payload, fields) VALUES "
	upsertDevice      = `INSERT INTO device_state (device, messages, first_seen, last_seen, gaps, missing, duplicates, resets, last_counter, run_low, run_seen, last_boot, kind, counting)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (device) DO UPDATE SET messages=excluded.messages, first_seen=excluded.first_seen,
 last_seen=excluded.last_seen, gaps=excluded.gaps, missing=excluded.missing, duplicates=excluded.duplicates,
 resets=excluded.resets, last_counter=excluded.last_counter, run_low=excluded.run_low, run_seen=excluded.run_seen,
 last_boot=excluded.last_boot, kind=excluded.kind, counting=excluded.counting`
	upsertBoot = `INSERT INTO boot_state (device, boot, last_seq, missing, messages, first_seen, last_seen) VALUES (?,?,?,?,?,?,?)
ON CONFLICT (device, boot) DO UPDATE SET last_seq=excluded.last_seq, missing=excluded.missing,
 messages=excluded.messages, first_seen=excluded.first_seen, last_seen=excluded.last_seen`
)

// The merge: messages_recent's rows into messages_merged (in id order, so the
// table appends and each device's index leaves are written once per merge, not
// once per commit), and each key's latest state_log row into device_state and
// boot_state; all in one transaction, so a reader of the views never sees a row
// twice or not at all.
const (
	mergeMessages = `INSERT INTO messages_merged (id, received_at, device, transport, remote, boot, seq, payload, fields)
SELECT id, received_at, device, transport, remote, boot, seq, payload, fields FROM messages_recent WHERE true ORDER BY id
ON CONFLICT DO NOTHING`
	mergeDevices = `INSERT INTO device_state (device, messages, first_seen, last_seen, gaps, missing, duplicates, resets,
 last_counter, run_low, run_seen, last_boot, kind, counting)
SELECT device, messages, first_seen, last_seen, gaps, missing, duplicates, resets, last_counter, run_low, run_seen, last_boot, kind, counting
FROM (SELECT max(id) AS id, device, messages, first_seen, last_seen, gaps, missing, duplicates, resets,
 last_counter, run_low, run_seen, last_boot, kind, counting FROM state_log WHERE boot IS NULL GROUP BY device) WHERE true
ON CONFLICT (device) DO UPDATE SET messages=excluded.messages, first_seen=excluded.first_seen,
 last_seen=excluded.last_seen, gaps=excluded.gaps, missing=excluded.missing, duplicates=excluded.duplicates,
 resets=excluded.resets, last_counter=excluded.last_counter, run_low=excluded.run_low, run_seen=excluded.run_seen,
 last_boot=excluded.last_boot, kind=excluded.kind, counting=excluded.counting`
	mergeBoots = `INSERT INTO boot_state (device, boot, last_seq, missing, messages, first_seen, last_seen)
SELECT device, boot, last_seq, ranges, messages, first_seen, last_seen
FROM (SELECT max(id) AS id, device, boot, last_seq, ranges, messages, first_seen, last_seen
 FROM state_log WHERE boot IS NOT NULL GROUP BY device, boot) WHERE true
ON CONFLICT (device, boot) DO UPDATE SET last_seq=excluded.last_seq, missing=excluded.missing,
 messages=excluded.messages, first_seen=excluded.first_seen, last_seen=excluded.last_seen`
)

// When to merge (Store.Maintain): once messages_recent holds mergePerDevice
// rows for each device it has rows of (so a merge writes each device's index
// leaves once for many rows), at least mergeMinRows, at most mergeMaxRows (which
// bounds what a query of one device scans unindexed). BENCHMARKS.md measures them.
const (
	mergePerDevice = 32
	mergeMinRows   = 8192
	mergeMaxRows   = 1 << 18
)

// Store is an inlet.Store backed by one SQLite file.
type Store struct {
	db *sql.DB     // readers, and the schema set-up
	w  *sql.Conn   // the writer's connection, used only by Commit (one goroutine)
	ws *writeStmts // prepared on w's driver connection, used only inside w.Raw
	g  *guard      // the writer's hold on its file (guard.go); nil for readers

	// The writer's bookkeeping of the unmerged halves, used only by Commit and
	// Maintain (the writer's goroutine), except logged (under mu).
	nextID, nextLog int64                 // the next message and state_log ids
	recentRows      int                   // rows in messages_recent
	logRows         int                   // rows in state_log
	recentDevices   map[string]struct{}   // devices with rows in messages_recent
	mergeRows       int                   // Options.MergeRows
	seqs            map[bootKey]*bootSeqs // acknowledged rows stored, per boot, for de-duplication
	mu              sync.Mutex
	logged          map[bootKey]int64 // each boot in state_log: its latest row's id
}

// bootSeqs is what the store knows of one boot's stored seqs without reading:
// the highest in messages_merged, and every one in messages_recent.
type bootSeqs struct {
	merged  int64   // the highest seq in messages_merged (0: none)
	recent  []int64 // the seqs in messages_recent, sorted
	touched bool    // stored to since the last merge
}

// has reports whether seq is in messages_recent.
func (b *bootSeqs) has(seq int64) bool {
	_, ok := slices.BinarySearch(b.recent, seq)
	return ok
}

func (b *bootSeqs) add(seq int64) {
	if n := len(b.recent); n == 0 || seq > b.recent[n-1] {
		b.recent = append(b.recent, seq)
		return
	}
	if i, ok := slices.BinarySearch(b.recent, seq); !ok {
		b.recent = slices.Insert(b.recent, i, seq)
	}
}

type bootKey struct{ device, boot string }

// writeStmts are the writer's statements at the driver level: Commit runs inside
// sql.Conn.Raw and calls the driver directly, which skips database/sql's
// per-argument conversion and locking on the hottest path of all.
type writeStmts struct {
	conn         driver.ExecerContext
	plain, acked [len(insertTiers)]driver.StmtExecContext // by tier
	merged       [len(insertTiers)]driver.StmtExecContext // a direct batch's rows
	mergedPlain  [len(insertTiers)]driver.StmtExecContext
	state        [len(stateTiers)]driver.StmtExecContext
	upsertDevice driver.StmtExecContext
	upsertBoot   driver.StmtExecContext
	closers      []driver.Stmt
	args         []driver.NamedValue
	counting     []byte   // reused to format devices.counting
	ru           *rollups // brought up to date in each commit (rollup.go)
}

func prepareWrites(ctx context.Context, dc any) (*writeStmts, error) {
	conn, ok1 := dc.(driver.ExecerContext)
	prep, ok2 := dc.(driver.ConnPrepareContext)
	if !ok1 || !ok2 {
		return nil, errors.New("sqlite driver lacks ExecerContext or ConnPrepareContext")
	}
	ws := &writeStmts{conn: conn, args: make([]driver.NamedValue, max(rowsPerInsert*colsAcked, stateTiers[0]*colsState))}
	for i := range ws.args {
		ws.args[i].Ordinal = i + 1
	}
	prepare := func(q string) (driver.StmtExecContext, error) {
		st, err := prep.PrepareContext(ctx, q)
		if err != nil {
			return nil, err
		}
		ws.closers = append(ws.closers, st)
		ex, ok := st.(driver.StmtExecContext)
		if !ok {
			return nil, errors.New("sqlite driver statement lacks ExecContext")
		}
		return ex, nil
	}
	many := func(head, row string, n int) string {
		return head + strings.TrimSuffix(strings.Repeat(row+",", n), ",")
	}
	var err error
	for i, n := range insertTiers {
		if ws.plain[i], err = prepare(many(insertPlain, rowPlain, n)); err != nil {
			return nil, err
		}
		if ws.acked[i], err = prepare(many(insertAcked, rowAcked, n)); err != nil {
			return nil, err
		}
	}
	for i, n := range stateTiers {
		if ws.state[i], err = prepare(many(insertState, rowState, n)); err != nil {
			return nil, err
		}
	}
	for i, n := range insertTiers {
		if ws.merged[i], err = prepare(many(insertMerged, rowAcked, n) + " ON CONFLICT DO NOTHING"); err != nil {
			return nil, err
		}
		if ws.mergedPlain[i], err = prepare(many(insertMergedPlain, rowPlain, n)); err != nil {
			return nil, err
		}
	}
	if ws.upsertDevice, err = prepare(upsertDevice); err != nil {
		return nil, err
	}
	if ws.upsertBoot, err = prepare(upsertBoot); err != nil {
		return nil, err
	}
	return ws, nil
}

// Options for Open.
type Options struct {
	ReadOnly bool // for export and devices while a server writes; no migration
	// Logger, for a writer, hears once when the database file is deleted or
	// replaced under it (guard.go).
	Logger *slog.Logger
	// MergeRows, when positive, replaces the merge policy (Maintain): merge
	// once messages_recent or state_log holds this many rows. For tests.
	MergeRows int
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
	var g *guard
	if !opt.ReadOnly {
		var err error
		if g, err = acquire(path, opt.Logger); err != nil {
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
	}
	db, err := sql.Open("sqlite", dsn(path, opt.ReadOnly))
	if err != nil {
		g.abandon()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Readers (HTTP requests, event streams) come and go; keep their
	// connections rather than reopening the file and its WAL for each query.
	db.SetMaxIdleConns(16)
	s := &Store{db: db, mergeRows: opt.MergeRows}
	if err := s.init(ctx, opt.ReadOnly); err != nil {
		if s.w != nil {
			s.w.Close()
		}
		db.Close()
		g.abandon()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if g != nil {
		s.g = g
		if err := s.guardOpen(ctx, path); err != nil {
			s.g = nil
			s.Close()
			g.abandon()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
	}
	return s, nil
}

func (s *Store) init(ctx context.Context, readOnly bool) error {
	if readOnly {
		var version int
		if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
			return err
		}
		return checkVersion(version)
	}
	w, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	s.w = w
	if err := migrate(ctx, w, ladder); err != nil {
		return err
	}
	// A merge dirties each device's index leaves once: they must stay in the
	// cache for the whole transaction rather than spill into the WAL twice.
	if _, err := w.ExecContext(ctx, "PRAGMA cache_size = -16384"); err != nil {
		return err
	}
	// Checkpoint once the WAL holds about walBytes: a page rewritten by many
	// commits in between (the last leaf of messages_recent and of state_log)
	// is copied into the database once.
	var size int
	if err := w.QueryRowContext(ctx, "SELECT page_size FROM pragma_page_size").Scan(&size); err != nil {
		return err
	}
	if _, err := w.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walBytes/size)); err != nil {
		return err
	}
	if err := s.loadBookkeeping(ctx); err != nil {
		return err
	}
	return w.Raw(func(dc any) error {
		var err error
		if s.ws, err = prepareWrites(ctx, dc); err == nil {
			s.ws.ru = newRollups(s)
		}
		return err
	})
}

// walBytes is the WAL's size at which the writer checkpoints (SQLite's default
// is 1,000 pages): 8 MiB wrote a fifth to a quarter fewer bytes per message
// (BENCHMARKS.md).
const walBytes = 8 << 20

// loadBookkeeping reads what the writer keeps in memory about the unmerged
// halves: the next ids, the row counts, and where each boot's latest state is.
func (s *Store) loadBookkeeping(ctx context.Context) error {
	var lastID, lastLog sql.NullInt64
	err := s.w.QueryRowContext(ctx, `SELECT (SELECT max(id) FROM (SELECT max(id) AS id FROM messages_merged UNION ALL SELECT max(id) FROM messages_recent)),
		(SELECT max(id) FROM state_log), (SELECT count(*) FROM messages_recent), (SELECT count(*) FROM state_log)`).
		Scan(&lastID, &lastLog, &s.recentRows, &s.logRows)
	if err != nil {
		return fmt.Errorf("read layout: %w", err)
	}
	s.nextID, s.nextLog = lastID.Int64+1, lastLog.Int64+1
	s.recentDevices = make(map[string]struct{})
	s.logged = make(map[bootKey]int64)
	rows, err := s.w.QueryContext(ctx, "SELECT DISTINCT device FROM messages_recent")
	if err != nil {
		return fmt.Errorf("read layout: %w", err)
	}
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return fmt.Errorf("read layout: %w", err)
		}
		s.recentDevices[d] = struct{}{}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read layout: %w", err)
	}
	s.seqs = make(map[bootKey]*bootSeqs)
	rows, err = s.w.QueryContext(ctx, "SELECT device, boot, seq FROM messages_recent WHERE seq IS NOT NULL")
	if err != nil {
		return fmt.Errorf("read layout: %w", err)
	}
	for rows.Next() {
		var k bootKey
		var seq int64
		if err := rows.Scan(&k.device, &k.boot, &seq); err != nil {
			rows.Close()
			return fmt.Errorf("read layout: %w", err)
		}
		bs := s.seqs[k]
		if bs == nil {
			if bs, err = s.loadSeqs(ctx, k); err != nil {
				rows.Close()
				return err
			}
		}
		bs.add(seq)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read layout: %w", err)
	}
	rows, err = s.w.QueryContext(ctx, "SELECT max(id), device, boot FROM state_log WHERE boot IS NOT NULL GROUP BY device, boot")
	if err != nil {
		return fmt.Errorf("read layout: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var k bootKey
		if err := rows.Scan(&id, &k.device, &k.boot); err != nil {
			return fmt.Errorf("read layout: %w", err)
		}
		s.logged[k] = id
	}
	return rows.Err()
}

// loadSeqs starts the store's memory of boot k: its highest merged seq (one
// lookup in the unique index messages_seq).
func (s *Store) loadSeqs(ctx context.Context, k bootKey) (*bootSeqs, error) {
	var merged sql.NullInt64
	if err := s.w.QueryRowContext(ctx, "SELECT max(seq) FROM messages_merged WHERE device = ? AND boot = ?", k.device, k.boot).Scan(&merged); err != nil {
		return nil, fmt.Errorf("sqlite: read boot %s/%s: %w", k.device, k.boot, err)
	}
	bs := &bootSeqs{merged: merged.Int64}
	s.seqs[k] = bs
	return bs, nil
}

// dropStored removes from b the acknowledged messages whose (device, boot,
// seq) is already stored, or comes twice in b. The writer's per-boot state
// already drops resends; this is the store's own last word (the merged table's
// unique key in the end), which costs a lookup only for a seq at or below the
// boot's highest merged one.
func (s *Store) dropStored(ctx context.Context, b *inlet.Batch) error {
	var dup map[int]bool
	var batchSeqs map[bootKey][]int64
	for i := range b.Messages {
		m := &b.Messages[i]
		if m.Seq == 0 {
			continue
		}
		k := bootKey{m.Device, m.Boot}
		bs := s.seqs[k]
		if bs == nil {
			var err error
			if bs, err = s.loadSeqs(ctx, k); err != nil {
				return err
			}
		}
		stored := bs.has(m.Seq)
		if !stored && m.Seq <= bs.merged {
			var n int
			if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM messages_merged WHERE device = ? AND boot = ? AND seq = ?",
				m.Device, m.Boot, m.Seq).Scan(&n); err != nil {
				return fmt.Errorf("sqlite: read boot %s/%s: %w", m.Device, m.Boot, err)
			}
			stored = n > 0
		}
		if !stored {
			if batchSeqs == nil {
				batchSeqs = make(map[bootKey][]int64)
			}
			stored = slices.Contains(batchSeqs[k], m.Seq)
			batchSeqs[k] = append(batchSeqs[k], m.Seq)
		}
		if stored {
			if dup == nil {
				dup = make(map[int]bool)
			}
			dup[i] = true
		}
	}
	if dup != nil {
		kept := b.Messages[:0]
		for i := range b.Messages {
			if !dup[i] {
				kept = append(kept, b.Messages[i])
			}
		}
		clear(b.Messages[len(kept):])
		b.Messages = kept
	}
	return nil
}

// Commit writes a batch in one transaction; it returns once the transaction is
// durable (WAL, synchronous=FULL). It reorders b.Messages: rows of one device go
// in together (keeping their order), so that a device's rows sit together in
// messages_recent's pages and the merge reads them in runs. Ids therefore follow
// arrival order per device, and across devices to within one batch.
func (s *Store) Commit(ctx context.Context, b *inlet.Batch) error {
	if s.w == nil {
		return fmt.Errorf("sqlite: commit: %w", inlet.ErrClosed)
	}
	s.g.begin()
	defer s.g.end()
	if err := s.dropStored(ctx, b); err != nil {
		return err
	}
	slices.SortStableFunc(b.Messages, func(x, y inlet.Message) int { return cmp.Compare(x.Device, y.Device) })
	devices := 0
	for i := range b.Messages {
		if i == 0 || b.Messages[i].Device != b.Messages[i-1].Device {
			devices++
		}
	}
	if len(b.Messages) >= directMinRows && len(b.Messages) >= mergePerDevice*devices {
		return s.commitDirect(ctx, b)
	}
	var bootIDs []int64
	if err := s.w.Raw(func(any) error {
		var err error
		bootIDs, err = s.ws.commit(ctx, b, s.nextID, s.nextLog, s.g.check)
		return err
	}); err != nil {
		return err
	}
	// Committed, but into the file the path names? If not, the batch is not
	// reported stored: the writer keeps it and nothing is acknowledged.
	if err := s.g.check(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	s.nextID += int64(len(b.Messages))
	s.nextLog += int64(len(b.Devices) + len(b.Boots))
	s.recentRows += len(b.Messages)
	s.logRows += len(b.Devices) + len(b.Boots)
	for i := range b.Messages {
		m := &b.Messages[i]
		if i == 0 || m.Device != b.Messages[i-1].Device {
			s.recentDevices[m.Device] = struct{}{}
		}
		if m.Seq != 0 {
			bs := s.seqs[bootKey{m.Device, m.Boot}]
			bs.add(m.Seq)
			bs.touched = true
		}
	}
	if len(b.Boots) > 0 {
		s.mu.Lock()
		for i := range b.Boots {
			s.logged[bootKey{b.Boots[i].Device, b.Boots[i].Boot}] = bootIDs[i]
		}
		s.mu.Unlock()
	}
	return nil
}

// commitDirect writes b, a large batch, straight into the indexed tables in one
// transaction that first merges the recent half (if it holds anything).
func (s *Store) commitDirect(ctx context.Context, b *inlet.Batch) error {
	merge := s.recentRows > 0 || s.logRows > 0
	err := s.w.Raw(func(any) (err error) {
		ws := s.ws
		if _, err := ws.conn.ExecContext(ctx, "BEGIN IMMEDIATE", nil); err != nil {
			return fmt.Errorf("sqlite: begin: %w", err)
		}
		defer func() {
			if err != nil {
				ws.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK", nil)
			}
		}()
		if merge {
			if err := ws.merge(ctx); err != nil {
				return fmt.Errorf("sqlite: merge: %w", err)
			}
		}
		msgs, id := b.Messages, s.nextID
		for len(msgs) > 0 {
			// The longest run of one row shape, in statements of the largest tiers.
			acked := msgs[0].Seq != 0
			run := 1
			for run < len(msgs) && (msgs[run].Seq != 0) == acked {
				run++
			}
			for i, n := range insertTiers {
				for ; run >= n; run -= n {
					var err error
					if acked {
						err = ws.insertMerged(ctx, ws.merged[i], msgs[:n], id)
					} else {
						err = ws.insert(ctx, ws.mergedPlain[i], msgs[:n], id, false)
					}
					if err != nil {
						return err
					}
					msgs, id = msgs[n:], id+int64(n)
				}
			}
		}
		for i := range b.Devices {
			if err := ws.saveState(ctx, ws.upsertDevice, &inlet.Batch{Devices: b.Devices[i : i+1]}, 0, 1, -1); err != nil {
				return err
			}
		}
		for i := range b.Boots {
			if err := ws.saveBoot(ctx, &b.Boots[i]); err != nil {
				return err
			}
		}
		if err := ws.ru.stage(ctx, ws.conn, b); err != nil {
			return err
		}
		if err := s.g.check(); err != nil {
			return fmt.Errorf("sqlite: commit: %w", err)
		}
		if _, err := ws.conn.ExecContext(ctx, "COMMIT", nil); err != nil {
			return fmt.Errorf("sqlite: commit batch: %w", err)
		}
		ws.ru.committed()
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.g.check(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	if merge {
		s.merged()
	}
	s.nextID += int64(len(b.Messages))
	for i := range b.Messages {
		// A boot the merge just forgot is read back when it is next stored to.
		if m := &b.Messages[i]; m.Seq != 0 {
			if bs := s.seqs[bootKey{m.Device, m.Boot}]; bs != nil {
				bs.merged = max(bs.merged, m.Seq)
				bs.touched = true
			}
		}
	}
	return nil
}

// insertMerged inserts msgs into messages_merged with ids from id.
func (ws *writeStmts) insertMerged(ctx context.Context, st driver.StmtExecContext, msgs []inlet.Message, id int64) error {
	n := 0
	set := func(v driver.Value) { ws.args[n].Value = v; n++ }
	for i := range msgs {
		m := &msgs[i]
		if i == 0 {
			set(id)
		} else {
			set(nil) // the next rowid: one seek a statement, not one a row
		}
		set(m.ReceivedAt)
		set(m.Device)
		set(m.Transport.String())
		set(m.Remote.String())
		if m.Seq != 0 {
			set(m.Boot)
			set(m.Seq)
		} else {
			set(nil)
			set(nil)
		}
		if m.Payload == nil {
			set([]byte{})
		} else {
			set(m.Payload)
		}
		if m.Fields != nil {
			set(string(m.Fields))
		} else {
			set(nil)
		}
	}
	_, err := st.ExecContext(ctx, ws.args[:n])
	ws.release(n)
	if err != nil {
		return fmt.Errorf("sqlite: insert messages: %w", err)
	}
	return nil
}

func (ws *writeStmts) saveBoot(ctx context.Context, b *inlet.Boot) error {
	missing, err := json.Marshal(rangesJSON(b.Missing))
	if err != nil {
		return fmt.Errorf("sqlite: save boot: %w", err)
	}
	vals := [...]driver.Value{b.Device, b.Boot, b.Last, string(missing), b.Messages, b.FirstSeen, b.LastSeen}
	for i, v := range vals {
		ws.args[i].Value = v
	}
	_, err = ws.upsertBoot.ExecContext(ctx, ws.args[:len(vals)])
	ws.release(len(vals))
	if err != nil {
		return fmt.Errorf("sqlite: save boot %s/%s: %w", b.Device, b.Boot, err)
	}
	return nil
}

// commit writes b in one transaction, its messages from id and its state rows
// from logID, and returns the state_log ids of b.Boots; before its COMMIT, guard
// must agree that the path still names the open file (otherwise it rolls back).
func (ws *writeStmts) commit(ctx context.Context, b *inlet.Batch, id, logID int64, guard func() error) (bootIDs []int64, err error) {
	if _, err := ws.conn.ExecContext(ctx, "BEGIN IMMEDIATE", nil); err != nil {
		return nil, fmt.Errorf("sqlite: begin: %w", err)
	}
	defer func() {
		if err != nil {
			// A failed COMMIT may have rolled back already; ignore that error.
			ws.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK", nil)
		}
	}()
	msgs := b.Messages
	for len(msgs) > 0 {
		// The longest run of one row shape, in statements of the largest tiers.
		acked := msgs[0].Seq != 0
		run := 1
		for run < len(msgs) && (msgs[run].Seq != 0) == acked {
			run++
		}
		stmts := &ws.plain
		if acked {
			stmts = &ws.acked
		}
		for i, n := range insertTiers {
			for ; run >= n; run -= n {
				if err := ws.insert(ctx, stmts[i], msgs[:n], id, acked); err != nil {
					return nil, err
				}
				msgs = msgs[n:]
				id += int64(n)
			}
		}
	}
	// The state rows: devices first, then boots, in statements of the largest tiers.
	nd, nb := len(b.Devices), len(b.Boots)
	bootIDs = make([]int64, nb)
	for i := range bootIDs {
		bootIDs[i] = logID + int64(nd+i)
	}
	for k := 0; k < nd+nb; {
		t := 0
		for nd+nb-k < stateTiers[t] {
			t++
		}
		n := stateTiers[t]
		if err := ws.saveState(ctx, ws.state[t], b, k, n, logID+int64(k)); err != nil {
			return nil, err
		}
		k += n
	}
	if err := ws.ru.stage(ctx, ws.conn, b); err != nil {
		return nil, err
	}
	if err := guard(); err != nil {
		return nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	if _, err := ws.conn.ExecContext(ctx, "COMMIT", nil); err != nil {
		return nil, fmt.Errorf("sqlite: commit batch: %w", err)
	}
	ws.ru.committed()
	return bootIDs, nil
}

// saveState appends n state rows from index k of b's devices followed by its
// boots, with ids from id.
func (ws *writeStmts) saveState(ctx context.Context, st driver.StmtExecContext, b *inlet.Batch, k, n int, id int64) error {
	a := 0
	set := func(v driver.Value) { ws.args[a].Value = v; a++ }
	upsert := id < 0 // device_state's columns only
	for j := k; j < k+n; j++ {
		if !upsert {
			set(id)
			id++
		}
		if j < len(b.Devices) {
			d := &b.Devices[j]
			set(d.ID)
			if !upsert {
				set(nil)
			}
			l, _ := d.Reported() // 0 for a values device: its loss is unknown
			for _, v := range [...]int64{d.Messages, d.FirstSeen, d.LastSeen, l.Gaps, l.Missing, l.Duplicates, l.Resets} {
				set(v)
			}
			if d.Run.Active {
				set(d.Run.High)
				set(d.Run.Low)
				set(int64(d.Run.Seen))
			} else {
				set(nil)
				set(nil)
				set(nil)
			}
			if d.LastBoot != "" {
				set(d.LastBoot)
			} else {
				set(nil)
			}
			set(d.KindName())
			if d.Acked() {
				set(nil)
			} else {
				ws.counting = d.AppendCounting(ws.counting[:0])
				set(string(ws.counting))
			}
			if !upsert {
				set(nil)
				set(nil)
			}
			continue
		}
		bt := &b.Boots[j-len(b.Devices)]
		missing, err := json.Marshal(rangesJSON(bt.Missing))
		if err != nil {
			ws.release(a)
			return fmt.Errorf("sqlite: save boot: %w", err)
		}
		set(bt.Device)
		set(bt.Boot)
		set(bt.Messages)
		set(bt.FirstSeen)
		set(bt.LastSeen)
		for range 10 { // the device columns
			set(nil)
		}
		set(bt.Last)
		set(string(missing))
	}
	_, err := st.ExecContext(ctx, ws.args[:a])
	ws.release(a)
	if err != nil {
		return fmt.Errorf("sqlite: save state: %w", err)
	}
	return nil
}

// Maintain merges the unmerged halves into the indexed tables when they have
// grown enough (the writer calls it between commits); it reports whether it did.
func (s *Store) Maintain(ctx context.Context) (bool, error) {
	if s.w == nil {
		return false, fmt.Errorf("sqlite: merge: %w", inlet.ErrClosed)
	}
	if s.mergeRows > 0 {
		if s.recentRows < s.mergeRows && s.logRows < s.mergeRows {
			return false, nil
		}
		return true, s.Merge(ctx)
	}
	due := s.recentRows >= mergeMaxRows || s.logRows >= 2*mergeMaxRows ||
		(s.recentRows >= mergeMinRows && s.recentRows >= mergePerDevice*len(s.recentDevices)) ||
		(s.logRows >= 2*mergeMinRows && s.logRows >= 2*mergePerDevice*len(s.recentDevices))
	if !due {
		return false, nil
	}
	return true, s.Merge(ctx)
}

// Merge moves every row of messages_recent into messages_merged and folds
// state_log into device_state and boot_state, in one transaction.
func (s *Store) Merge(ctx context.Context) error {
	if s.w == nil {
		return fmt.Errorf("sqlite: merge: %w", inlet.ErrClosed)
	}
	s.g.begin()
	defer s.g.end()
	err := s.w.Raw(func(any) (err error) {
		conn := s.ws.conn
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE", nil); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK", nil)
			}
		}()
		if err := s.ws.merge(ctx); err != nil {
			return err
		}
		if err := s.g.check(); err != nil {
			return err
		}
		_, err = conn.ExecContext(ctx, "COMMIT", nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: merge: %w", err)
	}
	s.merged()
	return nil
}

// merge runs a merge's statements in the open transaction.
func (ws *writeStmts) merge(ctx context.Context) error {
	for _, q := range [...]string{mergeMessages, "DELETE FROM messages_recent", mergeDevices, mergeBoots, "DELETE FROM state_log"} {
		if _, err := ws.conn.ExecContext(ctx, q, nil); err != nil {
			return err
		}
	}
	return nil
}

// merged updates the writer's bookkeeping after a merge has committed.
func (s *Store) merged() {
	s.recentRows, s.logRows = 0, 0
	clear(s.recentDevices)
	// Every seq is merged now; a boot not stored to since the last merge is
	// forgotten (read back with one lookup if it sends again).
	for k, bs := range s.seqs {
		if !bs.touched {
			delete(s.seqs, k)
			continue
		}
		if n := len(bs.recent); n > 0 {
			bs.merged = max(bs.merged, bs.recent[n-1])
		}
		bs.recent, bs.touched = bs.recent[:0], false
	}
	s.mu.Lock()
	clear(s.logged)
	s.mu.Unlock()
}

// rangesJSON is the stored form of missing ranges: [[from, to], ...].
func rangesJSON(rs []inlet.SeqRange) [][2]int64 {
	out := make([][2]int64, len(rs))
	for i, r := range rs {
		out[i] = [2]int64{r.From, r.To}
	}
	return out
}

// Boots returns the acknowledged-mode state of every (device, boot).
func (s *Store) Boots(ctx context.Context) ([]inlet.Boot, error) {
	bs, _, err := s.queryBoots(ctx, `SELECT device, boot, last_seq, missing, messages, first_seen, last_seen, 0
		FROM boots ORDER BY device, first_seen`)
	return bs, err
}

// Boot returns one sequence's persisted state: its latest state_log row, whose
// id the writer keeps in memory, or else a primary-key lookup in boot_state.
func (s *Store) Boot(ctx context.Context, device, boot string) (inlet.Boot, bool, error) {
	q, args := `SELECT device, boot, last_seq, missing, messages, first_seen, last_seen, 0
		FROM boots WHERE device = ? AND boot = ?`, []any{device, boot}
	if s.w != nil { // the writer's store knows where the state is
		s.mu.Lock()
		id, ok := s.logged[bootKey{device, boot}]
		s.mu.Unlock()
		// A merge may have moved the row since: then boot_state has it.
		q, args = `SELECT device, boot, last_seq, missing, messages, first_seen, last_seen, 0 FROM
			(SELECT 0 AS o, device, boot, last_seq, ranges AS missing, messages, first_seen, last_seen FROM state_log
			 WHERE id = ?1 AND device = ?2 AND boot = ?3 AND ?4
			 UNION ALL
			 SELECT 1, device, boot, last_seq, missing, messages, first_seen, last_seen FROM boot_state
			 WHERE device = ?2 AND boot = ?3)
			ORDER BY o LIMIT 1`, []any{id, device, boot, ok}
	}
	bs, _, err := s.queryBoots(ctx, q, args...)
	if err != nil || len(bs) == 0 {
		return inlet.Boot{}, false, err
	}
	return bs[0], true, nil
}

// RecentBoots returns every device's limit most recently seen boots (listed
// oldest first, as Boots lists them), and how many boots each device has in all. A device that wakes from
// deep sleep starts a new boot each time, so it can have many thousands.
func (s *Store) RecentBoots(ctx context.Context, limit int) ([]inlet.Boot, map[string]int64, error) {
	return s.queryBoots(ctx, `SELECT device, boot, last_seq, missing, messages, first_seen, last_seen, total FROM
		(SELECT *, row_number() OVER (PARTITION BY device ORDER BY last_seen DESC, boot) AS n,
		 count(*) OVER (PARTITION BY device) AS total FROM boots)
		WHERE n <= ? ORDER BY device, first_seen`, limit)
}

// DeviceBoots returns every boot of one device, oldest first.
func (s *Store) DeviceBoots(ctx context.Context, device string) ([]inlet.Boot, error) {
	bs, _, err := s.queryBoots(ctx, `SELECT device, boot, last_seq, missing, messages, first_seen, last_seen, 0
		FROM boots WHERE device = ? ORDER BY first_seen`, device)
	return bs, err
}

// queryBoots reads boots rows and the per-device totals of the last column.
func (s *Store) queryBoots(ctx context.Context, query string, args ...any) ([]inlet.Boot, map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: boots: %w", err)
	}
	defer rows.Close()
	var out []inlet.Boot
	totals := make(map[string]int64)
	for rows.Next() {
		var b inlet.Boot
		var missing string
		var total int64
		if err := rows.Scan(&b.Device, &b.Boot, &b.Last, &missing, &b.Messages, &b.FirstSeen, &b.LastSeen, &total); err != nil {
			return nil, nil, fmt.Errorf("sqlite: boots: %w", err)
		}
		var rs [][2]int64
		if err := json.Unmarshal([]byte(missing), &rs); err != nil {
			return nil, nil, fmt.Errorf("sqlite: boots: %s/%s: missing ranges: %w", b.Device, b.Boot, err)
		}
		for _, r := range rs {
			b.Missing = append(b.Missing, inlet.SeqRange{From: r[0], To: r[1]})
		}
		totals[b.Device] = total
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("sqlite: boots: %w", err)
	}
	return out, totals, nil
}

// release drops the references the first n arguments hold, keeping their ordinals.
func (ws *writeStmts) release(n int) {
	for i := range ws.args[:n] {
		ws.args[i].Value = nil
	}
}

func (ws *writeStmts) insert(ctx context.Context, st driver.StmtExecContext, msgs []inlet.Message, id int64, acked bool) error {
	n := 0
	set := func(v driver.Value) { ws.args[n].Value = v; n++ }
	for i := range msgs {
		m := &msgs[i]
		if i == 0 {
			set(id)
		} else {
			set(nil) // the next rowid: one seek a statement, not one a row
		}
		set(m.ReceivedAt)
		set(m.Device)
		set(m.Transport.String())
		set(m.Remote.String())
		if acked {
			set(m.Boot)
			set(m.Seq)
		}
		if m.Payload == nil {
			set([]byte{}) // a nil slice would bind as NULL, and the column is NOT NULL
		} else {
			set(m.Payload)
		}
		if m.Fields != nil {
			set(string(m.Fields)) // TEXT, so json_extract reads it as JSON, not JSONB
		} else {
			set(nil)
		}
	}
	_, err := st.ExecContext(ctx, ws.args[:n])
	ws.release(n)
	if err != nil {
		return fmt.Errorf("sqlite: insert messages: %w", err)
	}
	return nil
}

// Devices returns every device's persisted state, ordered by device.
func (s *Store) Devices(ctx context.Context) ([]inlet.Device, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT device, messages, first_seen, last_seen, gaps, missing, duplicates, resets,
		last_counter, run_low, run_seen, last_boot, kind, counting FROM devices ORDER BY device`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: devices: %w", err)
	}
	defer rows.Close()
	var out []inlet.Device
	for rows.Next() {
		var d inlet.Device
		var last, low, seen sql.NullInt64
		var lastBoot, counting sql.NullString
		var kind string
		if err := rows.Scan(&d.ID, &d.Messages, &d.FirstSeen, &d.LastSeen, &d.Gaps, &d.Missing, &d.Duplicates,
			&d.Resets, &last, &low, &seen, &lastBoot, &kind, &counting); err != nil {
			return nil, fmt.Errorf("sqlite: devices: %w", err)
		}
		if kind == "counter" {
			d.Kind = inlet.KindCounter
		}
		if counting.Valid {
			if err := d.ParseCounting(counting.String); err != nil {
				return nil, fmt.Errorf("sqlite: devices: %s: counting %q: %w", d.ID, counting.String, err)
			}
		}
		if last.Valid {
			d.Run = inlet.CounterRun{Active: true, High: last.Int64, Low: low.Int64, Seen: uint64(seen.Int64)}
		}
		d.LastBoot = lastBoot.String
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

// sinceBound is firstIDAt, skipped when the row at or before after was already
// received within the search's slack of t: the search could then only answer
// an id at or below after. Paged readers (exports, streams) pass a growing
// after with the same since, and pay one lookup a page instead of a search.
func (s *Store) sinceBound(ctx context.Context, t, after int64) (int64, error) {
	if after > 0 {
		var at sql.NullInt64
		// id in the result: SQLite then reads the view's two halves in step
		// (docs/schema.md, "How rows are stored"), not all of them.
		var id sql.NullInt64
		err := s.db.QueryRowContext(ctx, "SELECT id, received_at FROM messages WHERE id <= ? ORDER BY id DESC LIMIT 1", after).Scan(&id, &at)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
		if at.Valid && at.Int64 >= t-timeSlack {
			return after, nil
		}
	}
	return s.firstIDAt(ctx, t)
}

// firstIDAt finds, by binary search over the id order, an id at or before the
// first row received at or after t, without an index on received_at.
func (s *Store) firstIDAt(ctx context.Context, t int64) (int64, error) {
	var lo, hi sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT min(lo), max(hi) FROM (SELECT min(id) AS lo, max(id) AS hi FROM messages_merged
		UNION ALL SELECT min(id), max(id) FROM messages_recent)`).Scan(&lo, &hi); err != nil {
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
		id, err := s.sinceBound(ctx, q.Since, after)
		if err != nil {
			return fmt.Errorf("sqlite: messages: %w", err)
		}
		after = max(after, id)
	}
	where, args := []string{"id > ?"}, []any{after}
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
	cond := strings.Join(where, " AND ")
	// The two halves in one read transaction (one snapshot), each in id order:
	// every id in messages_merged is below every id in messages_recent, so
	// reading one after the other is reading the view in id order, without
	// the view's row-by-row merge of the halves.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: messages: %w", err)
	}
	defer tx.Rollback()
	if q.Limit > 0 && q.Last {
		// The newest Limit rows: find the oldest of them, newest half first,
		// then read forward from it like any other query (streaming, in id order).
		first, err := lastFirst(ctx, tx, cond, args, q.Limit)
		if err != nil {
			return fmt.Errorf("sqlite: messages: %w", err)
		}
		if first > 0 {
			args[0] = first - 1
		}
	}
	left := q.Limit
	for _, table := range [...]string{"messages_merged", "messages_recent"} {
		query := "SELECT " + messageColumns + " FROM " + table + " WHERE " + cond + " ORDER BY id"
		if q.Limit > 0 {
			query += fmt.Sprintf(" LIMIT %d", left)
		}
		n, err := readMessages(ctx, tx, query, args, fn)
		if err != nil {
			return err
		}
		if q.Limit > 0 {
			if left -= n; left <= 0 {
				break
			}
		}
	}
	return nil
}

// lastFirst returns the id of the oldest of the newest n rows matching cond,
// 0 if fewer than n match.
func lastFirst(ctx context.Context, tx *sql.Tx, cond string, args []any, n int) (int64, error) {
	// One pass over the (unindexed) recent half: how many of the newest n are
	// there, and the oldest of them.
	var recent int
	var first sql.NullInt64
	err := tx.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*), min(id) FROM (SELECT id FROM messages_recent WHERE %s ORDER BY id DESC LIMIT %d)", cond, n), args...).
		Scan(&recent, &first)
	if err != nil {
		return 0, err
	}
	if recent == n {
		return first.Int64, nil
	}
	first = sql.NullInt64{}
	err = tx.QueryRowContext(ctx, fmt.Sprintf("SELECT id FROM messages_merged WHERE %s ORDER BY id DESC LIMIT 1 OFFSET %d", cond, n-1-recent), args...).Scan(&first)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	return first.Int64, nil
}

// readMessages calls fn for each row of query, and returns how many it read.
func readMessages(ctx context.Context, tx *sql.Tx, query string, args []any, fn func(*inlet.Stored) error) (int, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("sqlite: messages: %w", err)
	}
	defer rows.Close()
	var m inlet.Stored
	n := 0
	for rows.Next() {
		if err := scanMessage(rows, &m); err != nil {
			return n, fmt.Errorf("sqlite: messages: %w", err)
		}
		n++
		if err := fn(&m); err != nil {
			return n, err
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("sqlite: messages: %w", err)
	}
	return n, nil
}

const messageColumns = "id, received_at, device, transport, remote, boot, seq, payload, fields"

// scanMessage reads one row of messageColumns into m.
func scanMessage(rows *sql.Rows, m *inlet.Stored) error {
	var transport, remote string
	var boot, fields sql.NullString
	var seq sql.NullInt64
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
	return nil
}

// LastID returns the highest message id, 0 in an empty database.
func (s *Store) LastID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT max(id) FROM (SELECT max(id) AS id FROM messages_merged UNION ALL SELECT max(id) FROM messages_recent)").Scan(&id); err != nil {
		return 0, fmt.Errorf("sqlite: last id: %w", err)
	}
	return id.Int64, nil
}

// Latest returns the newest message of every device, one index lookup each.
func (s *Store) Latest(ctx context.Context) ([]inlet.Stored, error) {
	// A device's newest row is in messages_recent if it has any there (one scan
	// of the small table), else in messages_merged (one index lookup).
	rows, err := s.db.QueryContext(ctx, "SELECT "+messageColumns+` FROM messages_recent WHERE id IN
		(SELECT max(id) FROM messages_recent GROUP BY device)
		UNION ALL
		SELECT `+messageColumns+` FROM messages_merged WHERE id IN
		(SELECT (SELECT max(id) FROM messages_merged m WHERE m.device = d.device) FROM device_state d
		 WHERE d.device NOT IN (SELECT device FROM messages_recent))
		ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: latest: %w", err)
	}
	defer rows.Close()
	var out []inlet.Stored
	for rows.Next() {
		var m inlet.Stored
		if err := scanMessage(rows, &m); err != nil {
			return nil, fmt.Errorf("sqlite: latest: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: latest: %w", err)
	}
	return out, nil
}

// Close closes the database; it is safe to call twice.
func (s *Store) Close() error {
	// After the connections: SQLite's last close checkpoints and removes the
	// -wal, which the next writer must not see half done. (It skips both when
	// the file was deleted or replaced: SQLITE_FCNTL_HAS_MOVED.)
	defer s.g.release()
	if s.w != nil {
		if s.ws != nil {
			s.w.Raw(func(any) error {
				for _, st := range s.ws.closers {
					st.Close()
				}
				return nil
			})
		}
		s.w.Close()
		s.w = nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

var _ inlet.Reader = (*Store)(nil)
