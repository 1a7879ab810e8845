// Package pgtest owns the test suite's PostgreSQL: a throw-away cluster started
// once per test process (initdb and pg_ctl from the Debian postgresql package,
// run as an unprivileged user when the tests run as root, on a loopback port
// chosen at run time) and an empty database per test. INLET_TEST_POSTGRES, a
// postgres:// URL of a superuser on a server already running, is used instead
// when set. Without a PostgreSQL the tests skip under plain `go test` and fail
// under scripts/test (internal/testenv).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inletdev/inlet/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// Main runs the tests of a package that uses URL and stops the cluster it
// started afterwards. Call it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if cl != nil {
		cl.stop()
	}
	return code
}

var (
	mu      sync.Mutex
	cl      *cluster
	startEr error
)

// cluster is one running PostgreSQL server.
type cluster struct {
	admin string // URL of the superuser's postgres database
	dir   string // data and socket directory; "" for INLET_TEST_POSTGRES
	bin   string
	user  string // the unprivileged user it runs as when we are root, else ""
	port  int
}

// URL returns the URL of a new empty database for t on the suite's server,
// starting the server on first use.
func URL(t testing.TB) string {
	t.Helper()
	c := server(t)
	name := "t_" + randHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Exec(ctx, c.admin, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	u, _ := url.Parse(c.admin)
	u.Path = "/" + name
	return u.String()
}

// Admin returns the superuser URL of the suite's server (to change server
// settings or stop it), starting it on first use.
func Admin(t testing.TB) string {
	t.Helper()
	return server(t).admin
}

// Exec runs one statement on the database at url over a connection of its own.
func Exec(ctx context.Context, url, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// Restart stops the suite's own server with the given shutdown mode (smart,
// fast or immediate) and starts it again on the same port. It skips when the
// server is INLET_TEST_POSTGRES's, which the suite does not control.
func Restart(t testing.TB, mode string) {
	t.Helper()
	c := server(t)
	if c.dir == "" {
		t.Skip("pgtest: INLET_TEST_POSTGRES is not the suite's own server")
	}
	mu.Lock()
	defer mu.Unlock()
	if err := c.pgctl("stop", "-m", mode); err != nil {
		t.Fatalf("pgtest: stop: %v", err)
	}
	if err := c.start(); err != nil {
		t.Fatalf("pgtest: start again: %v", err)
	}
}

func server(t testing.TB) *cluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if cl != nil {
		return cl
	}
	if startEr != nil {
		t.Fatalf("pgtest: %v", startEr)
	}
	if u := os.Getenv("INLET_TEST_POSTGRES"); u != "" {
		cl = &cluster{admin: u}
		return cl
	}
	bin := findBin()
	if bin == "" {
		testenv.Missing(t, "no PostgreSQL server (initdb, pg_ctl): install Debian's postgresql package, or set INLET_TEST_POSTGRES=postgres://…")
	}
	c, err := startCluster(bin)
	if err != nil {
		startEr = err
		t.Fatalf("pgtest: %v", err)
	}
	cl = c
	return cl
}

// findBin finds the directory of initdb and pg_ctl: on PATH, or the newest
// under Debian's /usr/lib/postgresql/VERSION/bin.
func findBin() string {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func startCluster(bin string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "inlet-pgtest-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		c.user = "nobody"
		u, err := user.Lookup(c.user)
		if err != nil {
			return nil, fmt.Errorf("running as root and no user %q to run PostgreSQL as: %w", c.user, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--no-sync", "--no-instructions"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	// A few tries: the free port picked can be taken before the server binds it.
	for try := 0; ; try++ {
		if c.port, err = freePort(); err == nil {
			if err = c.start(); err == nil {
				break
			}
		}
		if try == 4 {
			c.stop()
			return nil, err
		}
	}
	c.admin = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	return c, nil
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

// start starts the server on c.port and waits until it takes connections.
func (c *cluster) start() error {
	opts := strings.Join([]string{
		"-c listen_addresses=127.0.0.1",
		"-p " + strconv.Itoa(c.port),
		"-c unix_socket_directories=" + c.dir,
		"-c max_connections=200",
		"-c fsync=on",
		"-c synchronous_commit=on",
	}, " ")
	out, err := c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-o", opts, "-w", "-t", "60", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, tail(log, 2000))
	}
	return nil
}

func (c *cluster) pgctl(args ...string) error {
	a := append([]string{"-D", c.data(), "-w", "-t", "60"}, args...)
	if out, err := c.run("pg_ctl", a...); err != nil {
		return fmt.Errorf("pg_ctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (c *cluster) stop() {
	if c.dir == "" {
		return
	}
	c.pgctl("stop", "-m", "immediate")
	os.RemoveAll(c.dir)
}

// run runs one of the server's programs, as c.user when set.
func (c *cluster) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.user != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.user, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("pgtest: no randomness"))
	}
	return hex.EncodeToString(b)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
