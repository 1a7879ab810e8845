package powercut

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/inletdev/inlet/internal/testenv"
)

// mounted is a power-cut filesystem mounted for a test.
type mounted struct {
	t   testing.TB
	fs  *FS
	dir string // the mount point
}

// mountFS mounts a fresh power-cut filesystem; the test needs root and /dev/fuse.
func mountFS(t testing.TB) *mounted {
	t.Helper()
	testenv.Root(t, "mounting a FUSE filesystem (mount(2))")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Missing(t, "needs /dev/fuse: "+err.Error())
	}
	base := t.TempDir()
	p, err := New(filepath.Join(base, "state"))
	if err != nil {
		t.Fatal(err)
	}
	m := &mounted{t: t, fs: p, dir: filepath.Join(base, "mnt")}
	if err := os.Mkdir(m.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := p.Mount(m.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return m
}

func (m *mounted) path(name string) string { return filepath.Join(m.dir, name) }

// cut unmounts, cuts the power and mounts again.
func (m *mounted) cut(opt CutOptions) Report {
	m.t.Helper()
	if err := m.fs.Unmount(); err != nil {
		m.t.Fatal(err)
	}
	rep, err := m.fs.Cut(opt)
	if err != nil {
		m.t.Fatal(err)
	}
	if err := m.fs.Mount(m.dir); err != nil {
		m.t.Fatal(err)
	}
	m.t.Logf("cut: %s", rep)
	return rep
}

// syncDir fsyncs a directory of the mount.
func (m *mounted) syncDir(name string) {
	m.t.Helper()
	d, err := os.Open(m.path(name))
	if err != nil {
		m.t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		m.t.Fatal(err)
	}
}

// write creates (or truncates) name with data, fsyncing it when sync is set.
func (m *mounted) write(name string, data []byte, sync bool) {
	m.t.Helper()
	f, err := os.OpenFile(m.path(name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		m.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		m.t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			m.t.Fatal(err)
		}
	}
}

func (m *mounted) want(name string, data []byte) {
	m.t.Helper()
	got, err := os.ReadFile(m.path(name))
	if err != nil {
		m.t.Fatalf("%s: %v", name, err)
	}
	if !bytes.Equal(got, data) {
		m.t.Fatalf("%s: got %d bytes %.40q, want %d bytes %.40q", name, len(got), got, len(data), data)
	}
}

func (m *mounted) wantGone(name string) {
	m.t.Helper()
	if _, err := os.Lstat(m.path(name)); !os.IsNotExist(err) {
		m.t.Fatalf("%s: %v, want it gone", name, err)
	}
}

func TestSyncedWriteSurvivesUnsyncedDoesNot(t *testing.T) {
	m := mountFS(t)
	m.write("a", []byte("synced"), true)
	m.syncDir(".")
	f, err := os.OpenFile(m.path("a"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(" and not synced")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m.want("a", []byte("synced and not synced"))
	rep := m.cut(CutOptions{})
	m.want("a", []byte("synced"))
	if rep.Bytes != int64(len(" and not synced")) || rep.Files != 1 {
		t.Errorf("report %+v: want %d bytes of 1 file", rep, len(" and not synced"))
	}

	// An overwrite inside the synced extent, and a truncation, are undone too;
	// once synced they stay.
	big := bytes.Repeat([]byte("a"), 10000)
	m.write("b", big, true)
	m.syncDir(".")
	f, err = os.OpenFile(m.path("b"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(bytes.Repeat([]byte("b"), 3000), 1000)
	f.WriteAt(bytes.Repeat([]byte("c"), 3000), 2000) // overlaps the first write
	if err := f.Truncate(500); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m.cut(CutOptions{})
	m.want("b", big)
	f, err = os.OpenFile(m.path("b"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("xyz"), 9999)
	f.Sync()
	f.WriteAt([]byte("lost"), 0)
	f.Close()
	m.cut(CutOptions{})
	m.want("b", append(bytes.Repeat([]byte("a"), 9999), "xyz"...))
}

func TestCreatedFileNeedsItsDirectorySynced(t *testing.T) {
	m := mountFS(t)
	if err := os.Mkdir(m.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	m.write("d/synced-file-only", []byte("content synced, name not"), true)
	m.write("d/both", []byte("both synced"), true)
	m.syncDir("d")
	m.write("d/after", []byte("created after the directory's fsync"), true)
	rep := m.cut(CutOptions{})
	m.want("d/both", []byte("both synced"))
	m.want("d/synced-file-only", []byte("content synced, name not"))
	m.wantGone("d/after")
	if !slices.Equal(rep.Lost, []string{"d/after"}) {
		t.Errorf("lost %q, want [d/after]", rep.Lost)
	}

	// A file whose name was synced but content not comes back empty.
	m.write("d/empty", []byte("never synced"), false)
	m.syncDir("d")
	m.cut(CutOptions{})
	m.want("d/empty", nil)
}

func TestRenameAndUnlinkNotSyncedRevert(t *testing.T) {
	m := mountFS(t)
	m.write("old", []byte("old content"), true)
	m.write("target", []byte("target content"), true)
	m.write("doomed", []byte("doomed content"), true)
	m.syncDir(".")

	// The tmp-file-and-rename pattern, without the directory fsync.
	m.write("tmp", []byte("new content"), true)
	if err := os.Rename(m.path("tmp"), m.path("target")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(m.path("old"), m.path("renamed")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(m.path("doomed")); err != nil {
		t.Fatal(err)
	}
	m.want("target", []byte("new content"))
	rep := m.cut(CutOptions{})
	m.want("old", []byte("old content"))
	m.want("target", []byte("target content"))
	m.want("doomed", []byte("doomed content"))
	m.wantGone("renamed")
	m.wantGone("tmp")
	if !slices.Equal(rep.Back, []string{"doomed", "old", "target"}) || !slices.Equal(rep.Lost, []string{"renamed", "target"}) {
		t.Errorf("back %q, lost %q", rep.Back, rep.Lost)
	}

	// With the directory fsync, the same steps survive.
	m.write("tmp", []byte("new content"), true)
	os.Rename(m.path("tmp"), m.path("target"))
	os.Rename(m.path("old"), m.path("renamed"))
	os.Remove(m.path("doomed"))
	m.syncDir(".")
	m.cut(CutOptions{})
	m.want("target", []byte("new content"))
	m.want("renamed", []byte("old content"))
	m.wantGone("old")
	m.wantGone("doomed")
	m.wantGone("tmp")
}

func TestTornWrite(t *testing.T) {
	m := mountFS(t)
	m.write("f", []byte("head"), true)
	m.syncDir(".")
	data := bytes.Repeat([]byte("x"), 4096)
	f, err := os.OpenFile(m.path("f"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("overwritten"), 0) // an earlier unsynced write: gone
	f.WriteAt(data, 100)                // the last one: torn at a sector boundary
	f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	rep := m.cut(CutOptions{Tear: true, Rand: rng})
	got, err := os.ReadFile(m.path("f"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Torn) != 1 || len(got)%512 != 0 || len(got) < 512 || len(got) > 4096 {
		t.Fatalf("torn %q, %d bytes: want one write torn at a 512-byte boundary inside it", rep.Torn, len(got))
	}
	want := append([]byte("head"), make([]byte, 96)...)
	want = append(want, data[:len(got)-100]...)
	m.want("f", want)
}

func TestSpans(t *testing.T) {
	var s spans
	s = s.add(10, 20).add(30, 40).add(20, 25).add(0, 5).add(35, 50)
	if want := (spans{{0, 5}, {10, 25}, {30, 50}}); !slices.Equal(s, want) {
		t.Fatalf("spans %v, want %v", s, want)
	}
	if got, want := s.missing(3, 60), []span{{5, 10}, {25, 30}, {50, 60}}; !slices.Equal(got, want) {
		t.Fatalf("missing %v, want %v", got, want)
	}
	if got := s.missing(11, 24); got != nil {
		t.Fatalf("missing %v, want none", got)
	}
	if s.total() != 5+15+20 {
		t.Fatalf("total %d", s.total())
	}
}
