package client

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

const (
	outboxName = "outbox.log"
	lockName   = "lock"
	magic      = "INLETOB1"

	kindDevice = 'D'
	kindMsg    = 'M'
	kindAck    = 'A'
	kindHigh   = 'S'

	recordHeader = 8       // length and CRC
	maxRecord    = 1 << 20 // a longer length field means a torn or foreign file

	defaultCompactMin = 1 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// entry is one message in the outbox.
type entry struct {
	ord     uint64 // position in delivery order over all boots; Flush waits on it
	seq     int64
	payload []byte
	size    int64 // bytes of its record in the log
	gen     int64 // the write generation of its record: durable once synced past it
	visible bool  // durable (or the outbox is in memory): may go on the wire
	sent    bool  // transmitted at least once by this process
	done    bool  // acknowledged or dropped
}

// bootQueue holds the live messages of one boot in seq order.
type bootQueue struct {
	boot    string
	entries []*entry // entries[:head] are all done
	head    int
	live    int
	high    int64 // highest seq ever used for this boot
}

// outbox keeps messages until they are acknowledged: in memory, and in an
// append-only log when dir is set (see the package doc for the format).
//
// Lock order: syncMu, then mu.
type outbox struct {
	dir    string
	device string
	log    *slog.Logger
	max    int

	syncMu sync.Mutex // one fsync at a time; held across compaction

	mu         sync.Mutex
	f          *os.File
	lock       *os.File
	size       int64 // bytes in the log
	writtenGen int64 // records written
	syncedGen  int64 // records known durable
	broken     error // a failed fsync: the log can no longer be trusted
	closed     bool
	boots      []*bootQueue // oldest first; cur is last or was loaded
	byBoot     map[string]*bootQueue
	cur        *bootQueue
	nextSeq    int64
	lastOrd    uint64
	live       int
	staged     []*entry // written, not yet synced
	liveBytes  int64
	deadBytes  int64
	compactMin int64
	changed    chan struct{} // closed and replaced when entries are removed
	buf        []byte
}

// openOutbox opens (or creates) the outbox in dir, or an in-memory one when dir
// is empty, and starts boot's queue. fixed says boot is kept across processes, so
// its numbering continues after the highest seq the log remembers.
func openOutbox(dir, device, boot string, fixed bool, maxMsgs int, log *slog.Logger) (*outbox, int, error) {
	o := &outbox{
		dir: dir, device: device, log: log, max: maxMsgs,
		byBoot:     map[string]*bootQueue{},
		compactMin: defaultCompactMin,
		changed:    make(chan struct{}),
	}
	loaded := 0
	if dir != "" {
		var err error
		if loaded, err = o.open(); err != nil {
			return nil, 0, err
		}
	}
	if q := o.byBoot[boot]; q != nil && !fixed {
		o.closeFiles()
		return nil, 0, fmt.Errorf("outbox: boot %s is already in %s", boot, dir)
	}
	o.cur = o.queue(boot)
	o.nextSeq = o.cur.high + 1
	return o, loaded, nil
}

// queue returns boot's queue, adding it last if new.
func (o *outbox) queue(boot string) *bootQueue {
	q := o.byBoot[boot]
	if q == nil {
		q = &bootQueue{boot: boot}
		o.byBoot[boot] = q
		o.boots = append(o.boots, q)
	}
	return q
}

func (o *outbox) path() string { return filepath.Join(o.dir, outboxName) }

// open locks the directory, replays the log and truncates a torn tail.
func (o *outbox) open() (int, error) {
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(o.dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return 0, fmt.Errorf("outbox: %s is in use by another sender: %w", o.dir, err)
	}
	o.lock = lock
	f, err := os.OpenFile(o.path(), os.O_RDWR|os.O_APPEND, 0)
	if errors.Is(err, os.ErrNotExist) {
		if err := o.rewrite(); err != nil {
			o.closeFiles()
			return 0, err
		}
		return 0, nil
	}
	if err != nil {
		o.closeFiles()
		return 0, fmt.Errorf("outbox: %w", err)
	}
	o.f = f
	n, err := o.replay()
	if err != nil {
		o.closeFiles()
		return 0, err
	}
	return n, nil
}

// loadedMsg is a message record met while replaying.
type loadedMsg struct {
	payload []byte
	size    int64
}

// replay reads the whole log into the queues.
func (o *outbox) replay() (int, error) {
	r := bufio.NewReaderSize(o.f, 64<<10)
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(r, head); err != nil || string(head) != magic {
		return 0, fmt.Errorf("outbox: %s is not an inlet outbox", o.path())
	}
	var (
		order  []string
		msgs   = map[string]map[int64]loadedMsg{}
		highs  = map[string]int64{}
		off    = int64(len(magic))
		hdr    [recordHeader]byte
		device string
	)
	see := func(boot string) map[int64]loadedMsg {
		m := msgs[boot]
		if m == nil {
			m = map[int64]loadedMsg{}
			msgs[boot] = m
			order = append(order, boot)
		}
		return m
	}
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break // clean end, or a torn header
		}
		n := binary.LittleEndian.Uint32(hdr[0:4])
		if n == 0 || n > maxRecord {
			break
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			break
		}
		if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(hdr[4:8]) {
			break
		}
		size := int64(recordHeader) + int64(n)
		rec, err := decodeRecord(body)
		if err != nil {
			return 0, fmt.Errorf("outbox: %s at byte %d: %w", o.path(), off, err)
		}
		switch rec.kind {
		case kindDevice:
			device = rec.boot
		case kindMsg:
			see(rec.boot)[rec.a] = loadedMsg{payload: rec.payload, size: size}
			highs[rec.boot] = max(highs[rec.boot], rec.a)
		case kindAck:
			m := see(rec.boot)
			if rec.b-rec.a < int64(len(m)) {
				for s := rec.a; s <= rec.b; s++ {
					delete(m, s)
				}
			} else {
				for s := range m {
					if s >= rec.a && s <= rec.b {
						delete(m, s)
					}
				}
			}
		case kindHigh:
			see(rec.boot)
			highs[rec.boot] = max(highs[rec.boot], rec.a)
		}
		off += size
	}
	if device != "" && device != o.device {
		return 0, fmt.Errorf("outbox: %s belongs to device %q, not %q", o.dir, device, o.device)
	}
	fi, err := o.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	if fi.Size() > off {
		// Only the tail after the last fsync can be torn; nothing a Send returned
		// for is lost. New records must follow the last good one.
		o.log.Warn("outbox: ignoring a torn tail", "bytes", fi.Size()-off, "path", o.path())
		if err := o.f.Truncate(off); err != nil {
			return 0, fmt.Errorf("outbox: truncate torn tail: %w", err)
		}
		if err := o.f.Sync(); err != nil {
			return 0, fmt.Errorf("outbox: sync: %w", err)
		}
	}
	o.size = off
	loaded := 0
	for _, boot := range order {
		q := o.queue(boot)
		q.high = highs[boot]
		seqs := make([]int64, 0, len(msgs[boot]))
		for s := range msgs[boot] {
			seqs = append(seqs, s)
		}
		slices.Sort(seqs)
		for _, s := range seqs {
			m := msgs[boot][s]
			o.lastOrd++
			q.entries = append(q.entries, &entry{ord: o.lastOrd, seq: s, payload: m.payload, size: m.size, visible: true})
			o.liveBytes += m.size
		}
		q.live = len(seqs)
		o.live += q.live
		loaded += q.live
	}
	o.deadBytes = o.size - o.liveBytes
	if device == "" {
		o.buf = encodeRecord(o.buf[:0], kindDevice, o.device, 0, 0, nil)
		if err := o.append(o.buf); err != nil {
			return 0, err
		}
	}
	return loaded, nil
}

// record is a decoded log record. For kindDevice, boot holds the device.
type record struct {
	kind    byte
	boot    string
	a, b    int64
	payload []byte
}

func decodeRecord(body []byte) (record, error) {
	rec := record{kind: body[0]}
	p := body[1:]
	if rec.kind == kindDevice {
		rec.boot = string(p)
		return rec, nil
	}
	if rec.kind != kindMsg && rec.kind != kindAck && rec.kind != kindHigh {
		return rec, fmt.Errorf("unknown record kind %q (written by a newer version?)", rec.kind)
	}
	if len(p) < 1 || len(p) < 1+int(p[0]) {
		return rec, errors.New("short record")
	}
	rec.boot, p = string(p[1:1+p[0]]), p[1+p[0]:]
	u64 := func() int64 {
		if len(p) < 8 {
			return -1
		}
		v := binary.LittleEndian.Uint64(p)
		p = p[8:]
		return int64(v & (1<<63 - 1))
	}
	rec.a = u64()
	if rec.kind == kindAck {
		rec.b = u64()
	}
	if rec.a < 0 || rec.b < 0 {
		return rec, errors.New("short record")
	}
	if rec.kind == kindMsg {
		rec.payload = p
	} else if len(p) != 0 {
		return rec, errors.New("long record")
	}
	return rec, nil
}

// encodeRecord appends one framed record. For kindDevice, boot is the device.
func encodeRecord(dst []byte, kind byte, boot string, a, b int64, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, kind)
	if kind == kindDevice {
		dst = append(dst, boot...)
	} else {
		dst = append(dst, byte(len(boot)))
		dst = append(dst, boot...)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(a))
		if kind == kindAck {
			dst = binary.LittleEndian.AppendUint64(dst, uint64(b))
		}
		dst = append(dst, payload...)
	}
	body := dst[start+recordHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, crcTable))
	return dst
}

// append writes framed records at the end of the log. A failed write is cut off
// again, so that a later record never follows a torn one. Called with mu held.
func (o *outbox) append(b []byte) error {
	n, err := o.f.Write(b)
	if err != nil {
		if n > 0 {
			if terr := o.f.Truncate(o.size); terr != nil {
				o.broken = fmt.Errorf("outbox: cut a failed write: %w", terr)
			}
		}
		return fmt.Errorf("outbox: write: %w", err)
	}
	o.size += int64(n)
	o.writtenGen++
	return nil
}

// rewrite replaces the log by one holding only the device, each boot's highest
// seq and the live messages: the file is written aside, synced and renamed over
// the log, and the directory synced. Called with syncMu and mu held (or before
// the outbox is shared). Everything written so far is durable afterwards.
func (o *outbox) rewrite() error {
	tmp := o.path() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("outbox: compact: %w", err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("outbox: compact: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	w.WriteString(magic)
	size := int64(len(magic))
	buf := encodeRecord(o.buf[:0], kindDevice, o.device, 0, 0, nil)
	var live int64
	for _, q := range o.boots {
		if q.high > 0 && (q.live > 0 || q == o.cur) {
			buf = encodeRecord(buf, kindHigh, q.boot, q.high, 0, nil)
		}
		if len(buf) > 32<<10 {
			w.Write(buf)
			size += int64(len(buf))
			buf = buf[:0]
		}
		for _, e := range q.entries[q.head:] {
			if e.done {
				continue
			}
			n := len(buf)
			buf = encodeRecord(buf, kindMsg, q.boot, e.seq, 0, e.payload)
			e.size = int64(len(buf) - n)
			live += e.size
			if len(buf) > 32<<10 {
				w.Write(buf)
				size += int64(len(buf))
				buf = buf[:0]
			}
		}
	}
	w.Write(buf)
	size += int64(len(buf))
	o.buf = buf[:0]
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, o.path()); err != nil {
		return fail(err)
	}
	if err := syncDir(o.dir); err != nil {
		// The rename happened; only its durability is in doubt. Keep going with
		// the new file, which holds everything.
		o.log.Warn("outbox: sync directory", "err", err)
	}
	if o.f != nil {
		o.f.Close()
	}
	o.f = f
	o.size = size
	o.liveBytes, o.deadBytes = live, size-live
	o.syncedGen = o.writtenGen
	o.publishStaged()
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// add puts a message in the outbox under the next seq. It returns the write
// generation the caller must sync past before the message counts as durable
// (0: already durable). maxLine bounds "<seq> <payload>".
func (o *outbox) add(payload []byte, maxLine int) (int64, int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.closed:
		return 0, 0, ErrClosed
	case o.broken != nil:
		return 0, 0, o.broken
	case o.live >= o.max:
		return 0, 0, ErrOutboxFull
	}
	seq := o.nextSeq
	if digits(seq)+1+len(payload) > maxLine {
		return 0, 0, fmt.Errorf("%w: %d-byte payload with seq %d exceeds %d bytes", ErrTooLong, len(payload), seq, maxLine)
	}
	e := &entry{seq: seq, payload: payload}
	if o.f != nil {
		o.buf = encodeRecord(o.buf[:0], kindMsg, o.cur.boot, seq, 0, payload)
		if err := o.append(o.buf); err != nil {
			return 0, 0, err
		}
		e.size = int64(len(o.buf))
		e.gen = o.writtenGen
		o.liveBytes += e.size
		o.staged = append(o.staged, e)
	} else {
		e.visible = true
	}
	o.nextSeq++
	o.cur.high = seq
	o.lastOrd++
	e.ord = o.lastOrd
	o.cur.entries = append(o.cur.entries, e)
	o.cur.live++
	o.live++
	return seq, e.gen, nil
}

func digits(n int64) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

// sync returns once write generation gen is on disk. Concurrent callers share
// fsyncs: whoever holds syncMu syncs everything written so far, and those
// waiting behind it usually find their record already covered.
func (o *outbox) sync(gen int64) error {
	if gen == 0 {
		return nil
	}
	o.syncMu.Lock()
	defer o.syncMu.Unlock()
	o.mu.Lock()
	if o.syncedGen >= gen {
		o.mu.Unlock()
		return nil
	}
	if o.broken != nil {
		err := o.broken
		o.mu.Unlock()
		return err
	}
	f, target := o.f, o.writtenGen
	o.mu.Unlock()

	err := f.Sync()

	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages: what
		// is on disk is unknown. Refuse further messages; the unsynced ones are
		// not sent (their Sends fail) and the rest is still delivered.
		o.broken = fmt.Errorf("outbox: sync: %w", err)
		for _, e := range o.staged {
			o.drop(o.cur, e)
		}
		o.staged = nil
		o.trim(o.cur)
		o.broadcast()
		return o.broken
	}
	o.syncedGen = max(o.syncedGen, target)
	o.publishStaged()
	return nil
}

// publishStaged makes the messages synced so far sendable. Called with mu held.
func (o *outbox) publishStaged() {
	i := 0
	for ; i < len(o.staged) && o.staged[i].gen <= o.syncedGen; i++ {
		o.staged[i].visible = true
	}
	o.staged = o.staged[i:]
	if len(o.staged) == 0 {
		o.staged = nil
	}
}

// firstBoot is the oldest boot with a message ready to send.
func (o *outbox) firstBoot() (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.firstBootLocked()
}

func (o *outbox) firstBootLocked() (string, bool) {
	for i := 0; i < len(o.boots); i++ {
		q := o.boots[i]
		if q.live == 0 {
			if q != o.cur {
				// An earlier boot, finished: forget it.
				o.boots = slices.Delete(o.boots, i, i+1)
				delete(o.byBoot, q.boot)
				i--
			}
			continue
		}
		if q.entries[q.head].visible {
			return q.boot, true
		}
	}
	return "", false
}

// take returns up to n sendable messages of boot with seq above after, in seq
// order, marks them sent and says how many had been sent before.
func (o *outbox) take(boot string, after int64, n int) ([]*entry, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.byBoot[boot]
	if q == nil || n <= 0 {
		return nil, 0
	}
	es := q.entries[q.head:]
	i := sort.Search(len(es), func(i int) bool { return es[i].seq > after })
	var out []*entry
	resent := 0
	for ; i < len(es) && len(out) < n; i++ {
		e := es[i]
		if e.done {
			continue
		}
		if !e.visible {
			break
		}
		if e.sent {
			resent++
		}
		e.sent = true
		out = append(out, e)
	}
	return out, resent
}

// remove drops es (messages of boot, in seq order) as acknowledged or rejected,
// and returns how many were still live, which it also adds to count before
// anyone waiting in Flush can look.
func (o *outbox) remove(boot string, es []*entry, count *atomic.Int64) int {
	o.mu.Lock()
	q := o.byBoot[boot]
	n := 0
	if q != nil {
		n = o.removeLocked(q, es, count)
	}
	compact := o.needCompact()
	o.mu.Unlock()
	if compact {
		o.compact()
	}
	return n
}

// removeThrough drops every message of boot with seq at most n: the server has
// them already. It returns how many it dropped, and adds that to count.
func (o *outbox) removeThrough(boot string, n int64, count *atomic.Int64) int {
	o.mu.Lock()
	q := o.byBoot[boot]
	removed := 0
	if q != nil {
		var es []*entry
		for _, e := range q.entries[q.head:] {
			if e.seq > n {
				break
			}
			if !e.done {
				es = append(es, e)
			}
		}
		removed = o.removeLocked(q, es, count)
	}
	compact := o.needCompact()
	o.mu.Unlock()
	if compact {
		o.compact()
	}
	return removed
}

// removeLocked marks es done and logs them as 'A' records, one per run of
// messages with no live message of the boot between them.
func (o *outbox) removeLocked(q *bootQueue, es []*entry, count *atomic.Int64) int {
	var live []*entry
	for _, e := range es {
		if !e.done {
			live = append(live, e)
			o.drop(q, e)
		}
	}
	if len(live) == 0 {
		return 0
	}
	if o.f != nil && o.broken == nil && !o.closed {
		buf := o.buf[:0]
		lo := live[0].seq
		for i, e := range live {
			if i+1 < len(live) && !o.liveBetween(q, e.seq, live[i+1].seq) {
				continue
			}
			buf = encodeRecord(buf, kindAck, q.boot, lo, e.seq, nil)
			if i+1 < len(live) {
				lo = live[i+1].seq
			}
		}
		o.buf = buf
		if err := o.append(buf); err != nil {
			// Not fatal: the messages are resent after a restart and the
			// server de-duplicates them.
			o.log.Warn("outbox: record acknowledgement", "err", err)
		} else {
			o.deadBytes += int64(len(buf))
		}
	}
	o.trim(q)
	count.Add(int64(len(live)))
	o.broadcast()
	return len(live)
}

// trim moves q.head past the messages that are done.
func (o *outbox) trim(q *bootQueue) {
	for q.head < len(q.entries) && q.entries[q.head].done {
		q.entries[q.head] = nil
		q.head++
	}
	if q.head > 1024 && q.head > len(q.entries)/2 {
		q.entries = slices.Clone(q.entries[q.head:])
		q.head = 0
	}
}

// drop marks one live entry done. Called with mu held.
func (o *outbox) drop(q *bootQueue, e *entry) {
	if e.done {
		return
	}
	e.done = true
	q.live--
	o.live--
	o.liveBytes -= e.size
	o.deadBytes += e.size
}

// liveBetween reports whether q holds a live message with a < seq < b.
func (o *outbox) liveBetween(q *bootQueue, a, b int64) bool {
	es := q.entries[q.head:]
	i := sort.Search(len(es), func(i int) bool { return es[i].seq > a })
	for ; i < len(es) && es[i].seq < b; i++ {
		if !es[i].done {
			return true
		}
	}
	return false
}

func (o *outbox) broadcast() {
	close(o.changed)
	o.changed = make(chan struct{})
}

func (o *outbox) needCompact() bool {
	return o.f != nil && o.broken == nil && !o.closed &&
		o.deadBytes >= o.compactMin && o.deadBytes >= o.liveBytes
}

// compact rewrites the log when it is mostly acknowledged records.
func (o *outbox) compact() {
	o.syncMu.Lock()
	defer o.syncMu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.needCompact() {
		return
	}
	before := o.size
	if err := o.rewrite(); err != nil {
		o.log.Warn("outbox: compaction failed; the log keeps growing", "err", err)
		o.compactMin *= 2 // do not retry on every ack
		return
	}
	o.log.Debug("outbox: compacted", "before", before, "after", o.size)
}

// doneThrough reports whether every message up to ord is acknowledged or
// dropped, and otherwise returns a channel closed at the next removal.
func (o *outbox) doneThrough(ord uint64) (bool, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, q := range o.boots {
		if q.live > 0 {
			return q.entries[q.head].ord > ord, o.changed
		}
	}
	return true, nil
}

func (o *outbox) last() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lastOrd
}

func (o *outbox) pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.live
}

// bumpSeq makes sure the current boot's next seq is above n: the server knows
// seqs this outbox never handed out (a fixed boot whose outbox was lost).
func (o *outbox) bumpSeq(boot string, n int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if boot != o.cur.boot || n < o.nextSeq {
		return false
	}
	o.nextSeq = n + 1
	o.cur.high = n
	if o.f != nil && o.broken == nil && !o.closed {
		o.buf = encodeRecord(o.buf[:0], kindHigh, boot, n, 0, nil)
		if err := o.append(o.buf); err == nil {
			o.deadBytes += int64(len(o.buf))
		}
	}
	return true
}

// setClosed makes add fail with ErrClosed.
func (o *outbox) setClosed() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
}

// close syncs and closes the log; whatever is not acknowledged stays in it.
func (o *outbox) close() error {
	o.syncMu.Lock()
	defer o.syncMu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	if o.f == nil {
		return nil
	}
	var err error
	if o.broken == nil {
		if err = o.f.Sync(); err != nil {
			err = fmt.Errorf("outbox: sync: %w", err)
		} else {
			o.syncedGen = o.writtenGen
		}
	}
	o.closeFiles()
	return err
}

// closeFiles closes the log and releases the lock, without syncing: what a
// crash would leave.
func (o *outbox) closeFiles() {
	if o.f != nil {
		o.f.Close()
		o.f = nil
	}
	if o.lock != nil {
		o.lock.Close()
		o.lock = nil
	}
}
