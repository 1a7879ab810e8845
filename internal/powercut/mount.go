package powercut

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Mount serves the filesystem at mountpoint (an existing, empty directory).
func (p *FS) Mount(mountpoint string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server != nil {
		return errors.New("powercut: already mounted")
	}
	root, err := fs.NewLoopbackRoot(p.data)
	if err != nil {
		return fmt.Errorf("powercut: %w", err)
	}
	rootNode := &node{LoopbackNode: root.(*fs.LoopbackNode), p: p}
	server, err := fs.Mount(mountpoint, rootNode, &fs.Options{
		MountOptions: fuse.MountOptions{
			DirectMount: true, // as root: mount(2), no fusermount needed
			FsName:      "powercut",
			Name:        "powercut",
		},
	})
	if err != nil {
		return fmt.Errorf("powercut: mount %s: %w", mountpoint, err)
	}
	p.server, p.mountpoint = server, mountpoint
	return nil
}

// Unmount unmounts the filesystem; it retries while the mount is busy (files
// still open just after their process was killed), for up to 10 s.
func (p *FS) Unmount() error {
	p.mu.Lock()
	server := p.server
	p.mu.Unlock()
	if server == nil {
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := server.Unmount()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("powercut: unmount %s: %w", p.mountpoint, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	server.Wait()
	p.mu.Lock()
	p.server = nil
	p.mu.Unlock()
	return nil
}

// node is a loopback node whose changes the filesystem tracks.
type node struct {
	*fs.LoopbackNode
	p *FS
}

// WrapChild makes every node of the tree a node.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if ln, ok := ops.(*fs.LoopbackNode); ok {
		return &node{LoopbackNode: ln, p: n.p}
	}
	return ops
}

var (
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
)

// rel is the node's path relative to the root ("." for the root).
func (n *node) rel() string {
	r := n.Path(nil)
	if r == "" {
		return "."
	}
	return r
}

func (n *node) backing(name string) string {
	return filepath.Join(n.p.data, n.rel(), name)
}

// writable turns a write-only open into read-write: the filesystem reads what a
// write overwrites.
func writable(flags uint32) uint32 {
	if flags&syscall.O_ACCMODE == syscall.O_WRONLY {
		flags = flags&^syscall.O_ACCMODE | syscall.O_RDWR
	}
	return flags
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	var st syscall.Stat_t
	existed := syscall.Lstat(n.backing(name), &st) == nil
	trunc := flags&syscall.O_TRUNC != 0
	ch, fh, fl, errno := n.LoopbackNode.Create(ctx, name, writable(flags&^syscall.O_TRUNC), mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	pf, errno := n.p.wrap(fh, !existed)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	if existed && trunc {
		if err := pf.f.truncate(pf.fd, 0); err != nil {
			pf.Release(ctx)
			return nil, nil, 0, fs.ToErrno(err)
		}
	}
	return ch, pf, fl, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	trunc := flags&syscall.O_TRUNC != 0
	fh, fl, errno := n.LoopbackNode.Open(ctx, writable(flags&^syscall.O_TRUNC))
	if errno != 0 {
		return nil, 0, errno
	}
	pf, errno := n.p.wrap(fh, false)
	if errno != 0 {
		return nil, 0, errno
	}
	if trunc {
		if err := pf.f.truncate(pf.fd, 0); err != nil {
			pf.Release(ctx)
			return nil, 0, fs.ToErrno(err)
		}
	}
	return pf, fl, 0
}

// wrap takes over a loopback file handle, so its writes, truncations and
// fsyncs are tracked (and so the kernel cannot pass its I/O through to the
// backing file, past the filesystem).
func (p *FS) wrap(fh fs.FileHandle, created bool) (*pfile, syscall.Errno) {
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		return nil, syscall.EIO
	}
	fd, ok := lf.PassthroughFd()
	if !ok {
		lf.Release(context.Background())
		return nil, syscall.EBADF
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		lf.Release(context.Background())
		return nil, fs.ToErrno(err)
	}
	var f *file
	if created {
		f = p.created(st.Ino)
	} else {
		f = p.fileOf(st.Ino, st.Size)
	}
	return &pfile{lf: lf, fd: fd, f: f, p: p}, 0
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if size, ok := in.GetSize(); ok {
		if pf, ok := fh.(*pfile); ok {
			if err := pf.f.truncate(pf.fd, int64(size)); err != nil {
				return fs.ToErrno(err)
			}
		} else {
			if err := n.truncatePath(int64(size)); err != nil {
				return fs.ToErrno(err)
			}
		}
		in.Valid &^= fuse.FATTR_SIZE
	}
	return n.LoopbackNode.Setattr(ctx, fh, in, out)
}

func (n *node) truncatePath(size int64) error {
	fd, err := syscall.Open(n.backing(""), syscall.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return err
	}
	return n.p.fileOf(st.Ino, st.Size).truncate(fd, size)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if err := n.p.keep(n.backing(name)); err != nil {
		return fs.ToErrno(err)
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	if flags&^renameNoreplace != 0 {
		return syscall.ENOTSUP // RENAME_EXCHANGE, RENAME_WHITEOUT
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(n.backing(name), &st); err != nil {
		return fs.ToErrno(err)
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return syscall.EPERM // directories are durable at once: renaming one is not modelled
	}
	if err := n.p.keep(np.backing(newName)); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fs.ToErrno(err)
	}
	return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if errno == 0 {
		n.p.mkdir(filepath.Join(n.rel(), name))
	}
	return ch, errno
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	errno := n.LoopbackNode.Rmdir(ctx, name)
	if errno == 0 {
		n.p.rmdir(filepath.Join(n.rel(), name))
	}
	return errno
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Symlink(ctx, target, name, out)
	if errno == 0 {
		n.registerCreated(name)
	}
	return ch, errno
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
	if errno == 0 {
		n.registerCreated(name)
	}
	return ch, errno
}

func (n *node) registerCreated(name string) {
	var st syscall.Stat_t
	if syscall.Lstat(n.backing(name), &st) == nil {
		n.p.created(st.Ino)
	}
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fl, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &pdir{fh: fh, n: n}, fl, 0
}

// Fsync is the fallback for an fsync without a handle of ours.
func (n *node) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	switch h := fh.(type) {
	case *pfile:
		return h.Fsync(ctx, flags)
	case *pdir:
		return h.Fsyncdir(ctx, flags)
	}
	if n.StableAttr().Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return fs.ToErrno(n.p.syncDir(n.rel()))
	}
	return syscall.EBADF
}

// pfile is an open file whose writes the filesystem tracks.
type pfile struct {
	lf *fs.LoopbackFile
	fd int // lf's descriptor, valid until Release
	f  *file
	p  *FS
}

var (
	_ fs.FileReader    = (*pfile)(nil)
	_ fs.FileWriter    = (*pfile)(nil)
	_ fs.FileReleaser  = (*pfile)(nil)
	_ fs.FileFlusher   = (*pfile)(nil)
	_ fs.FileFsyncer   = (*pfile)(nil)
	_ fs.FileGetattrer = (*pfile)(nil)
	_ fs.FileSetattrer = (*pfile)(nil)
	_ fs.FileLseeker   = (*pfile)(nil)
	_ fs.FileAllocater = (*pfile)(nil)
)

func (h *pfile) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return h.lf.Read(ctx, buf, off)
}

func (h *pfile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := h.f.write(h.fd, data, off)
	return uint32(n), fs.ToErrno(err)
}

func (h *pfile) Release(ctx context.Context) syscall.Errno { return h.lf.Release(ctx) }
func (h *pfile) Flush(ctx context.Context) syscall.Errno   { return h.lf.Flush(ctx) }

// Fsync makes the file's content durable. The backing file is not fsynced: the
// machine running the tests does not lose power.
func (h *pfile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	time.Sleep(h.p.SyncDelay)
	return fs.ToErrno(h.f.sync(h.fd))
}

func (h *pfile) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.lf.Getattr(ctx, out)
}

func (h *pfile) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if size, ok := in.GetSize(); ok {
		if err := h.f.truncate(h.fd, int64(size)); err != nil {
			return fs.ToErrno(err)
		}
		in.Valid &^= fuse.FATTR_SIZE
	}
	return h.lf.Setattr(ctx, in, out)
}

func (h *pfile) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return h.lf.Lseek(ctx, off, whence)
}

// Allocate is refused: fallocate's size changes are not modelled, and
// posix_fallocate falls back to writing.
func (h *pfile) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	return syscall.EOPNOTSUPP
}

// pdir is an open directory whose fsync makes its entries durable.
type pdir struct {
	fh fs.FileHandle
	n  *node
}

var (
	_ fs.FileReaddirenter = (*pdir)(nil)
	_ fs.FileReleasedirer = (*pdir)(nil)
	_ fs.FileSeekdirer    = (*pdir)(nil)
	_ fs.FileFsyncdirer   = (*pdir)(nil)
)

func (d *pdir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if r, ok := d.fh.(fs.FileReaddirenter); ok {
		return r.Readdirent(ctx)
	}
	return nil, syscall.ENOTSUP
}

func (d *pdir) Releasedir(ctx context.Context, flags uint32) {
	if r, ok := d.fh.(fs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
	}
}

func (d *pdir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if s, ok := d.fh.(fs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *pdir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	time.Sleep(d.n.p.SyncDelay)
	return fs.ToErrno(d.n.p.syncDir(d.n.rel()))
}

// renameNoreplace is Linux's RENAME_NOREPLACE.
const renameNoreplace = 1
