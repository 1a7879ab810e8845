// Package powercut owns a filesystem for tests that can lose power: a FUSE
// passthrough over a backing directory that forgets, on Cut, everything that
// was not synced, the way a disk and its page cache do when the power goes.
//
// The model is the strict reading of POSIX that a careful program must assume:
//
//   - A write (or truncation) to a file is durable once the file is fsynced
//     (fsync or fdatasync). Until then a Cut undoes it; with CutOptions.Tear the
//     last unsynced write to each file may instead survive torn, as its first
//     whole 512-byte sectors.
//   - A name (a file created, renamed into place, unlinked, renamed away or
//     replaced) is durable once its directory is fsynced. Until then a Cut puts
//     the directory back as it was at its last fsync: a created file vanishes, a
//     renamed one is back under its old name, an unlinked one is back, with its
//     synced content.
//   - Directories themselves (mkdir, rmdir) are durable at once; renaming a
//     directory is refused. Neither SQLite nor inlet's client does either while
//     running.
//
// Writes go through to the backing directory at once (so reads, mmap and locks
// behave as on any filesystem); what a Cut needs to undo them is kept in
// memory: the bytes each unsynced write overwrote in a file's synced extent,
// and the directory entries as of each directory's last fsync. Unlinked and
// replaced files are kept aside (outside the backing directory) until no
// synced directory entry names them.
//
// Usage: New over a state directory, Mount, run the program under test on the
// mount point, kill it, Unmount, Cut, Mount again. Cut runs only while
// unmounted, so the kernel's page cache of the mount goes with the power.
//
// Mounting needs root and /dev/fuse (go-fuse mounts with mount(2) itself, and
// falls back to fusermount3 from Debian's fuse3 when that fails). Open files
// are plain FUSE files with the kernel page cache, not direct_io, so a shared
// writable mmap works: SQLite's WAL index (the -shm file) runs unchanged. File
// locks are the kernel's own (the mount does not take them over), which is
// right for processes on one machine.
package powercut

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// FS is a power-cut filesystem over a state directory.
type FS struct {
	// SyncDelay is how long each fsync takes before it makes anything durable,
	// like a disk's cache flush (an SD card's takes milliseconds); a program
	// killed in it had nothing of it made durable. Set it before Mount.
	SyncDelay time.Duration

	data  string // the backing directory, what the mount shows
	trash string // unlinked or replaced files a Cut may bring back

	mu      sync.Mutex
	files   map[uint64]*file            // by backing inode number
	durable map[string]map[string]*file // directory (relative) -> name -> file, as of its last fsync
	nextID  uint64

	server     *fuse.Server
	mountpoint string
}

// file is what the filesystem knows of one backing file (inode).
type file struct {
	id uint64

	mu          sync.Mutex
	durableSize int64
	dirty       spans      // bytes written or truncated since the last fsync
	pre         []preimage // the synced bytes those changes overwrote
	last        preimage   // the last unsynced write (off, data)
	hasLast     bool
}

// maxRun bounds the last write a Cut may tear.
const maxRun = 1 << 20

type preimage struct {
	off  int64
	data []byte
}

// New opens a power-cut filesystem whose files live in dir/data. Whatever is
// already there counts as synced.
func New(dir string) (*FS, error) {
	p := &FS{
		data:    filepath.Join(dir, "data"),
		trash:   filepath.Join(dir, "trash"),
		files:   map[uint64]*file{},
		durable: map[string]map[string]*file{},
	}
	if err := os.RemoveAll(p.trash); err != nil {
		return nil, fmt.Errorf("powercut: %w", err)
	}
	for _, d := range []string{p.data, p.trash} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("powercut: %w", err)
		}
	}
	live, err := p.scan()
	if err != nil {
		return nil, err
	}
	for rel, f := range live {
		dir, name := filepath.Split(rel)
		p.durable[filepath.Clean(dir)][name] = f
	}
	return p, nil
}

// Dir is the backing directory: what the mount shows. Use it only while the
// filesystem is unmounted.
func (p *FS) Dir() string { return p.data }

// scan walks the backing directory, registers every directory (durable at once)
// and returns every other entry with its file. Called with p.mu held or before
// the filesystem is shared.
func (p *FS) scan() (map[string]*file, error) {
	live := map[string]*file{}
	err := filepath.WalkDir(p.data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(p.data, path)
		if d.IsDir() {
			if p.durable[rel] == nil {
				p.durable[rel] = map[string]*file{}
			}
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return err
		}
		live[rel] = p.fileLocked(st.Ino, st.Size)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("powercut: scan: %w", err)
	}
	return live, nil
}

// fileLocked returns the file of inode ino, registering one whose size bytes
// count as synced if it is not known.
func (p *FS) fileLocked(ino uint64, size int64) *file {
	f := p.files[ino]
	if f == nil {
		p.nextID++
		f = &file{id: p.nextID, durableSize: size}
		p.files[ino] = f
	}
	return f
}

func (p *FS) fileOf(ino uint64, size int64) *file {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fileLocked(ino, size)
}

// created registers a file just created through the mount: nothing of it is
// synced, and no synced directory entry names it.
func (p *FS) created(ino uint64) *file {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	f := &file{id: p.nextID}
	p.files[ino] = f
	return f
}

func (p *FS) trashPath(f *file) string {
	return filepath.Join(p.trash, strconv.FormatUint(f.id, 10))
}

// keep links the file at path into the trash before its name goes away, so a
// Cut can bring it back.
func (p *FS) keep(path string) error {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return err
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return nil
	}
	f := p.fileOf(st.Ino, st.Size)
	if err := os.Link(path, p.trashPath(f)); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// syncDir makes the entries of directory rel durable, as they are now.
func (p *FS) syncDir(rel string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	des, err := os.ReadDir(filepath.Join(p.data, rel))
	if err != nil {
		return err
	}
	m := map[string]*file{}
	for _, de := range des {
		if de.IsDir() {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(p.data, rel, de.Name()), &st); err != nil {
			return err
		}
		m[de.Name()] = p.fileLocked(st.Ino, st.Size)
	}
	p.durable[rel] = m
	// Files kept aside that no synced entry names can never come back.
	named := map[*file]bool{}
	for _, d := range p.durable {
		for _, f := range d {
			named[f] = true
		}
	}
	kept, _ := os.ReadDir(p.trash)
	for _, de := range kept {
		var st syscall.Stat_t
		path := filepath.Join(p.trash, de.Name())
		if syscall.Lstat(path, &st) != nil {
			continue
		}
		if f := p.files[st.Ino]; f == nil || !named[f] {
			os.Remove(path)
		}
	}
	return nil
}

func (p *FS) mkdir(rel string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.durable[rel] == nil {
		p.durable[rel] = map[string]*file{}
	}
}

func (p *FS) rmdir(rel string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.durable, rel)
}

// write writes data at off through fd, first keeping the synced bytes it
// overwrites.
func (f *file) write(fd int, data []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := off + int64(len(data))
	if err := f.save(fd, off, min(end, f.durableSize)); err != nil {
		return 0, err
	}
	n, err := syscall.Pwrite(fd, data, off)
	if n > 0 {
		f.dirty = f.dirty.add(off, off+int64(n))
		// A write that continues the last one extends it (the kernel splits one
		// write(2) into page-sized requests, and appends run on): what a Cut may
		// tear is the latest sequential run, up to maxRun bytes.
		if !f.hasLast || off != f.last.off+int64(len(f.last.data)) || len(f.last.data) >= maxRun {
			f.last.off = off
			f.last.data = f.last.data[:0]
		}
		f.last.data = append(f.last.data, data[:n]...)
		f.hasLast = true
	}
	return n, err
}

// save keeps the synced bytes in [lo, hi) not already kept.
func (f *file) save(fd int, lo, hi int64) error {
	for _, r := range f.dirty.missing(lo, hi) {
		buf := make([]byte, r.hi-r.lo)
		n, err := syscall.Pread(fd, buf, r.lo)
		if err != nil {
			return err
		}
		f.pre = append(f.pre, preimage{r.lo, buf[:n]})
		f.dirty = f.dirty.add(r.lo, r.hi)
	}
	return nil
}

// truncate sets the size of the file open at fd.
func (f *file) truncate(fd int, size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return err
	}
	if err := f.save(fd, size, f.durableSize); err != nil {
		return err
	}
	if err := syscall.Ftruncate(fd, size); err != nil {
		return err
	}
	f.dirty = f.dirty.add(min(size, st.Size), max(size, st.Size))
	return nil
}

// sync makes the file's content as it is now durable.
func (f *file) sync(fd int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return err
	}
	f.durableSize = st.Size
	f.dirty, f.pre, f.hasLast = nil, nil, false
	f.last.data = f.last.data[:0]
	return nil
}

// CutOptions says how a Cut tears.
type CutOptions struct {
	// Tear: the last unsynced write to each file (with the writes it continues
	// sequentially, up to 1 MiB) survives as its first whole 512-byte sectors (a
	// random number of them, at least one, fewer than all), where it spans a
	// sector boundary.
	Tear bool
	// Rand chooses the tears (default: seeded from the clock).
	Rand *rand.Rand
}

// Report is what a Cut forgot.
type Report struct {
	Bytes   int64            // bytes written or truncated away since their file's last fsync, forgotten
	Files   int              // files that had unsynced content
	PerFile map[string]int64 // bytes forgotten by file name (a file kept aside after an unlink: "#<id>")
	Lost    []string         // names created or renamed into place since their directory's last fsync: gone
	Back    []string         // names unlinked, renamed away or replaced since their directory's last fsync: back
	Torn    []string         // "name@off: kept k of n bytes": last writes that survived torn
}

func (r Report) String() string {
	return fmt.Sprintf("%d bytes in %d files, %d names lost, %d names back, %d torn writes",
		r.Bytes, r.Files, len(r.Lost), len(r.Back), len(r.Torn))
}

// Cut cuts the power: every file goes back to its content at its last fsync and
// every directory to its entries at its last fsync. The filesystem must be
// unmounted.
func (p *FS) Cut(opt CutOptions) (Report, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var rep Report
	if p.server != nil {
		return rep, errors.New("powercut: cut while mounted")
	}
	rng := opt.Rand
	if rng == nil {
		rng = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	}
	live, err := p.scan()
	if err != nil {
		return rep, err
	}
	// Every file, wherever it is now, goes to the trash under its id.
	where := map[*file]string{}
	kept, err := os.ReadDir(p.trash)
	if err != nil {
		return rep, fmt.Errorf("powercut: %w", err)
	}
	for _, de := range kept {
		path := filepath.Join(p.trash, de.Name())
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return rep, fmt.Errorf("powercut: %w", err)
		}
		if f := p.files[st.Ino]; f != nil && path == p.trashPath(f) {
			where[f] = path
		} else {
			os.Remove(path)
		}
	}
	names := make([]string, 0, len(live))
	for rel := range live {
		names = append(names, rel)
	}
	sort.Strings(names)
	for _, rel := range names {
		f := live[rel]
		path := filepath.Join(p.data, rel)
		if where[f] == "" {
			if err := os.Link(path, p.trashPath(f)); err != nil {
				return rep, fmt.Errorf("powercut: %w", err)
			}
			where[f] = p.trashPath(f)
		}
		if err := os.Remove(path); err != nil {
			return rep, fmt.Errorf("powercut: %w", err)
		}
	}
	// Content back to the last fsync.
	ids := make([]*file, 0, len(where))
	for f := range where {
		ids = append(ids, f)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].id < ids[j].id })
	for _, f := range ids {
		before := rep.Bytes
		torn, err := f.restore(where[f], opt.Tear, rng, &rep)
		if err != nil {
			return rep, err
		}
		name := nameOf(live, f, fmt.Sprintf("#%d", f.id))
		if rep.Bytes != before {
			if rep.PerFile == nil {
				rep.PerFile = map[string]int64{}
			}
			rep.PerFile[name] += rep.Bytes - before
		}
		if torn != "" {
			rep.Torn = append(rep.Torn, name+torn)
		}
	}
	// Names back to each directory's last fsync.
	files := map[uint64]*file{}
	durableNames := map[string]*file{}
	for dir, m := range p.durable {
		for name, f := range m {
			src := where[f]
			if src == "" {
				return rep, fmt.Errorf("powercut: %s: synced name of a file that was not kept", filepath.Join(dir, name))
			}
			rel := filepath.Join(dir, name)
			if err := os.Link(src, filepath.Join(p.data, rel)); err != nil {
				return rep, fmt.Errorf("powercut: %w", err)
			}
			durableNames[rel] = f
		}
	}
	for _, rel := range names {
		if durableNames[rel] != live[rel] {
			rep.Lost = append(rep.Lost, rel)
		}
	}
	for rel, f := range durableNames {
		if live[rel] != f {
			rep.Back = append(rep.Back, rel)
		}
	}
	sort.Strings(rep.Back)
	for f, path := range where {
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return rep, fmt.Errorf("powercut: %w", err)
		}
		if st.Nlink > 1 {
			files[st.Ino] = f
		}
		if err := os.Remove(path); err != nil {
			return rep, fmt.Errorf("powercut: %w", err)
		}
	}
	p.files = files
	return rep, nil
}

func nameOf(live map[string]*file, f *file, fallback string) string {
	best := ""
	for rel, g := range live {
		if g == f && (best == "" || rel < best) {
			best = rel
		}
	}
	if best == "" {
		return fallback
	}
	return best
}

// restore puts the file at path back to its synced content, optionally with its
// last write torn, and counts what it forgot.
func (f *file) restore(path string, tear bool, rng *rand.Rand, rep *Report) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() {
		f.dirty, f.pre, f.hasLast = nil, nil, false
		f.last.data = nil
	}()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return "", fmt.Errorf("powercut: %w", err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return "", nil
	}
	if len(f.dirty) == 0 && st.Size == f.durableSize {
		return "", nil
	}
	rep.Files++
	rep.Bytes += f.dirty.total()
	fd, err := syscall.Open(path, syscall.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("powercut: %w", err)
	}
	defer syscall.Close(fd)
	if err := syscall.Ftruncate(fd, f.durableSize); err != nil {
		return "", fmt.Errorf("powercut: %w", err)
	}
	for _, pi := range f.pre {
		if _, err := syscall.Pwrite(fd, pi.data, pi.off); err != nil {
			return "", fmt.Errorf("powercut: %w", err)
		}
	}
	if !tear || !f.hasLast {
		return "", nil
	}
	off, n := f.last.off, int64(len(f.last.data))
	first := (off/512 + 1) * 512 // the first sector boundary inside the write
	if first >= off+n {
		return "", nil
	}
	bounds := (off+n-1-first)/512 + 1 // boundaries strictly inside (off, off+n)
	cut := first + 512*rng.Int64N(bounds)
	keep := cut - off
	if _, err := syscall.Pwrite(fd, f.last.data[:keep], off); err != nil {
		return "", fmt.Errorf("powercut: %w", err)
	}
	rep.Bytes -= keep
	return fmt.Sprintf("@%d: kept %d of %d bytes", off, keep, n), nil
}
