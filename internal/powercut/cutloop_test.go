package powercut

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet/client"
	"github.com/inletdev/inlet/internal/inlettest"
	"github.com/inletdev/inlet/internal/testenv"
	_ "modernc.org/sqlite"
)

var (
	cycles = flag.Int("cycles", 50, "TestPowerCut: power cuts to run")
	seed   = flag.Uint64("seed", 0, "TestPowerCut: seed of the cut moments and tears (0: from the clock)")
	budget = flag.Duration("duration", 0, "TestPowerCut: start no cycle after this long (0: no limit), then finish and summarize")
)

// TestPowerCut is the cut loop: the real inlet binary serves from a database on
// the power-cut filesystem while acknowledged devices (raw INLET/1 over TCP and
// UDP, and the Go client over TCP and UDP with its outbox on a normal disk) and
// plain tutorial devices (TCP lines, UDP datagrams) send. At a random moment
// inlet is SIGKILLed and the power cut; the filesystem is remounted, inlet
// restarted, and the devices resend. After every cut the database must pass
// PRAGMA integrity_check, hold every reading ever acknowledged exactly once,
// and keep its loss accounting in agreement with its rows; no hello may answer
// a last= below what was acknowledged, or below an earlier answer.
//
// Reproduce a failure with the seed it prints: go test ./internal/powercut
// -run PowerCut -seed N (the cut moments and tears follow the seed; the
// devices' timing does not).
func TestPowerCut(t *testing.T) {
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	if raceEnabled {
		runWithoutRace(t, s)
		return
	}
	runCutLoop(t, s, *cycles)
}

// runWithoutRace runs the loop in a test binary built without the race
// detector: under it, the pure-Go SQLite of the checks after every cut is some
// 20 times slower, and 50 cycles would take minutes instead of seconds. (inlet
// runs without it either way; the filesystem's own tests and the outbox test
// run with it.)
func runWithoutRace(t *testing.T, s uint64) {
	testenv.Root(t, "mounting a FUSE filesystem (mount(2))")
	bin := filepath.Join(t.TempDir(), "powercut.test")
	if out, err := exec.Command("go", "test", "-c", "-o", bin, "github.com/inletdev/inlet/internal/powercut").CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-test.run=^TestPowerCut$", "-test.v", "-test.timeout=30m",
		fmt.Sprintf("-cycles=%d", *cycles), fmt.Sprintf("-seed=%d", s), fmt.Sprintf("-duration=%s", *budget))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		t.Log(sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the cut loop (built without -race) failed: %v", err)
	}
}

// cutRig is the loop's world.
type cutRig struct {
	t         *testing.T
	bin       string
	fs        *FS
	mnt       string
	snap      string // where each cut's database is copied for checking
	tcp, udp  string // inlet's addresses, the same across restarts
	srv       *inletProc
	rawTCP    []*tcpDevice
	rawUDP    []*udpDevice
	clients   []*clientDevice
	plain     []*plainDevice
	lastProbe map[string]int64 // device/boot -> highest last= answered to a probe
	reports   []Report
}

func runCutLoop(t *testing.T, s uint64, n int) {
	t.Logf("seed %d (reproduce: go test ./internal/powercut -run PowerCut -seed %d -cycles %d)", s, s, n)
	m := mountFS(t)
	// Each fsync takes 5 ms, like an SD card's: a kill lands in a commit's
	// unsynced WAL append far more often than with an instant one.
	m.fs.Unmount()
	m.fs.SyncDelay = 5 * time.Millisecond
	if err := m.fs.Mount(m.dir); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(s, 0x706f776572637574))
	r := &cutRig{t: t, bin: buildInlet(t), fs: m.fs, mnt: m.dir, snap: t.TempDir(), lastProbe: map[string]int64{}}
	r.tcp, r.udp = freePorts(t)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		for _, c := range r.clients {
			c.s.Close()
		}
	})
	for i := range 3 {
		d := &tcpDevice{id: fmt.Sprintf("raw-tcp-%d", i), boot: "b" + strconv.Itoa(i), next: 1}
		r.rawTCP = append(r.rawTCP, d)
		wg.Go(func() { d.run(ctx, r.tcp, rand.New(rand.NewPCG(s, uint64(i)))) })
	}
	for i := range 2 {
		d := &udpDevice{id: fmt.Sprintf("raw-udp-%d", i), boot: "u" + strconv.Itoa(i), next: 1,
			acked: map[int64]bool{}, unacked: map[int64]time.Time{}}
		r.rawUDP = append(r.rawUDP, d)
		wg.Go(func() { d.run(ctx, r.udp) })
	}
	for i, network := range []string{"tcp", "tcp", "udp"} {
		addr := r.tcp
		if network == "udp" {
			addr = r.udp
		}
		s, err := client.New(client.Config{
			Addr: addr, Network: network, Device: fmt.Sprintf("client-%s-%d", network, i),
			Outbox: filepath.Join(t.TempDir(), "outbox"), AckTimeout: 2 * time.Second,
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		d := &clientDevice{s: s, id: fmt.Sprintf("client-%s-%d", network, i)}
		r.clients = append(r.clients, d)
		wg.Go(func() { d.send(ctx) })
		wg.Go(func() { d.flush(ctx) })
	}
	for i, network := range []string{"tcp", "tcp", "udp"} {
		d := &plainDevice{ip: fmt.Sprintf("127.0.0.%d", 10+i), network: network}
		r.plain = append(r.plain, d)
		addr := r.tcp
		if network == "udp" {
			addr = r.udp
		}
		wg.Go(func() { d.run(ctx, addr) })
	}

	start := time.Now()
	for cycle := 1; cycle <= n; cycle++ {
		if *budget > 0 && time.Since(start) > *budget {
			t.Logf("-duration %s reached after %d cycles", *budget, cycle-1)
			n = cycle - 1
			break
		}
		t0 := time.Now()
		r.start()
		t1 := time.Now()
		r.waitProgress(cycle)
		r.probe()
		if cycle == 1 {
			r.checkShmMapped()
		}
		t2 := time.Now()
		time.Sleep(time.Duration(rng.Int64N(int64(400 * time.Millisecond))))
		r.srv.kill()
		rep := r.cut(rng)
		t3 := time.Now()
		st := r.check(cycle)
		t.Logf("cycle %d: dropped %s %v; %s (start %s, first acks %s, cut %s, check %s)", cycle, rep, rep.PerFile, st,
			t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), t3.Sub(t2).Round(time.Millisecond), time.Since(t3).Round(time.Millisecond))
		r.failOnProblems(cycle)
		if t.Failed() {
			t.Fatalf("cycle %d failed (seed %d)", cycle, s)
		}
	}

	// The end: every device stops making readings and everything gets
	// acknowledged; after one more cut, all of it must be there.
	for _, d := range r.rawTCP {
		d.stop()
	}
	for _, d := range r.rawUDP {
		d.stop()
	}
	for _, d := range r.clients {
		d.stop()
	}
	r.start()
	r.waitDrained()
	r.srv.kill()
	rep := r.cut(rng)
	st := r.check(n + 1)
	r.failOnProblems(n + 1)
	for _, d := range r.rawTCP {
		if d.acked != d.next-1 {
			t.Errorf("%s: acked %d of %d", d.id, d.acked, d.next-1)
		}
	}
	t.Logf("final: dropped %s; %s", rep, st)
	r.summary(n, st, time.Since(start))
}

// start runs inlet on the power-cut filesystem.
func (r *cutRig) start() {
	r.t.Helper()
	r.srv = startInlet(r.t, r.bin, "--tcp", r.tcp, "--udp", r.udp, "--http", "",
		"--db", filepath.Join(r.mnt, "inlet.db"))
}

// waitProgress waits until every raw device has a reading acknowledged by this
// run of the server, so every cut also finds resends in flight.
func (r *cutRig) waitProgress(cycle int) {
	r.t.Helper()
	base := make([]int64, 0)
	for _, d := range r.rawTCP {
		base = append(base, d.ackedNow())
	}
	for _, d := range r.rawUDP {
		base = append(base, d.ackCount())
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := true
		i := 0
		for _, d := range r.rawTCP {
			done = done && d.ackedNow() > base[i]
			i++
		}
		for _, d := range r.rawUDP {
			done = done && d.ackCount() > base[i]
			i++
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("cycle %d: no readings acknowledged 30s after the start\n%s", cycle, r.srv.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitDrained waits until every reading of every acknowledged device is.
func (r *cutRig) waitDrained() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, c := range r.clients {
		if err := c.s.Flush(ctx); err != nil {
			r.t.Fatalf("%s: flush: %v", c.id, err)
		}
		c.mu.Lock()
		c.flushed = c.sent
		c.mu.Unlock()
	}
	for ctx.Err() == nil {
		done := true
		for _, d := range r.rawTCP {
			done = done && d.ackedNow() == d.sentNow()
		}
		for _, d := range r.rawUDP {
			done = done && d.ackCount() == d.sentNow()
		}
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatal("the devices' readings were not all acknowledged within 60s")
}

// probe says hello as each device that has no connection of its own to check
// (raw UDP, the Go clients): last= must cover what was acknowledged.
func (r *cutRig) probe() {
	r.t.Helper()
	for _, d := range r.rawUDP {
		r.probeOne(d.id, d.boot, d.prefix())
	}
	for _, c := range r.clients {
		c.mu.Lock()
		f := c.flushed
		c.mu.Unlock()
		r.probeOne(c.id, c.s.Boot(), f)
	}
}

func (r *cutRig) probeOne(id, boot string, acked int64) {
	r.t.Helper()
	last, err := hello(r.tcp, id, boot)
	if err != nil {
		r.t.Errorf("probe %s: %v", id, err)
		return
	}
	key := id + "/" + boot
	if last < acked || last < r.lastProbe[key] {
		r.t.Errorf("%s: hello answered last=%d; acknowledged through %d, an earlier hello said %d", key, last, acked, r.lastProbe[key])
	}
	r.lastProbe[key] = max(r.lastProbe[key], last)
}

// checkShmMapped checks that SQLite runs unchanged on the filesystem: inlet
// maps the WAL index (-shm) shared from the mount, as on any disk.
func (r *cutRig) checkShmMapped() {
	r.t.Helper()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", r.srv.cmd.Process.Pid))
	if err != nil {
		r.t.Fatal(err)
	}
	shm := filepath.Join(r.mnt, "inlet.db-shm")
	for _, line := range strings.Split(string(maps), "\n") {
		if f := strings.Fields(line); len(f) == 6 && f[5] == shm && f[1][3] == 's' {
			return
		}
	}
	r.t.Fatalf("inlet has no shared mapping of %s:\n%s", shm, maps)
}

// cut unmounts, cuts the power (tearing half of the time), keeps a copy of
// the database as the power cut left it, and mounts again.
func (r *cutRig) cut(rng *rand.Rand) Report {
	r.t.Helper()
	if err := r.fs.Unmount(); err != nil {
		r.t.Fatal(err)
	}
	rep, err := r.fs.Cut(CutOptions{Tear: rng.IntN(2) == 0, Rand: rng})
	if err != nil {
		r.t.Fatal(err)
	}
	r.reports = append(r.reports, rep)
	for _, name := range []string{"inlet.db", "inlet.db-wal"} {
		os.Remove(filepath.Join(r.snap, name))
		if err := copyFile(filepath.Join(r.fs.Dir(), name), filepath.Join(r.snap, name)); err != nil && !os.IsNotExist(err) {
			r.t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(r.snap, "inlet.db-shm"))
	if err := r.fs.Mount(r.mnt); err != nil {
		r.t.Fatal(err)
	}
	return rep
}

// cutStats is what one check found.
type cutStats struct {
	acked, lost, dups, rows int64
}

func (s cutStats) String() string {
	return fmt.Sprintf("%d rows, %d readings acknowledged, %d lost, %d duplicates", s.rows, s.acked, s.lost, s.dups)
}

// check opens the copy of the database the cut left and checks it.
func (r *cutRig) check(cycle int) cutStats {
	t := r.t
	t.Helper()
	var st cutStats
	// The copy is thrown away: no fsyncs for the recovery and the checkpoint
	// SQLite does on opening and closing it.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(r.snap, "inlet.db")+"?_pragma=synchronous(OFF)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ok string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("cycle %d: integrity_check: %q, %v", cycle, ok, err)
	}
	db.QueryRow("SELECT count(*) FROM messages").Scan(&st.rows)
	type ackedDev struct {
		id, boot string
		acked    func(int64) bool
		n        int64
	}
	var devs []ackedDev
	for _, d := range r.rawTCP {
		a := d.ackedNow()
		devs = append(devs, ackedDev{d.id, d.boot, func(s int64) bool { return s <= a }, a})
	}
	for _, d := range r.rawUDP {
		set := d.ackedSet()
		devs = append(devs, ackedDev{d.id, d.boot, func(s int64) bool { return set[s] }, int64(len(set))})
	}
	for _, c := range r.clients {
		c.mu.Lock()
		f := c.flushed
		c.mu.Unlock()
		devs = append(devs, ackedDev{c.id, c.s.Boot(), func(s int64) bool { return s <= f }, f})
	}
	for _, d := range devs {
		// The seqs come from the (device, boot, seq) index alone; the payloads
		// are compared inside SQLite: a cut's check stays cheap as the
		// database grows.
		seqs := map[int64]int{}
		rows, err := db.Query("SELECT seq FROM messages WHERE device = ? AND boot = ?", d.id, d.boot)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				t.Fatal(err)
			}
			seqs[seq]++
		}
		rows.Close()
		var bad int64
		var example string
		if err := db.QueryRow(`SELECT count(*), coalesce(min(seq || ': ' || CAST(payload AS TEXT)), '') FROM messages
			WHERE device = ?1 AND boot = ?2 AND CAST(payload AS TEXT) != printf('v=%d dev=%s', seq, ?1)`, d.id, d.boot).Scan(&bad, &example); err != nil {
			t.Fatal(err)
		}
		if bad != 0 {
			t.Errorf("cycle %d: %s: %d rows with a payload other than the one sent, e.g. seq %s", cycle, d.id, bad, example)
		}
		st.acked += d.n
		present := 0
		for seq, k := range seqs {
			if k > 1 {
				st.dups += int64(k - 1)
				t.Errorf("cycle %d: %s seq %d stored %d times", cycle, d.id, seq, k)
			}
			if d.acked(seq) {
				present++
			}
		}
		if lost := d.n - int64(present); lost != 0 {
			st.lost += lost
			var missing []int64
			for s := int64(1); s <= d.n*2+1000 && len(missing) < 10; s++ {
				if d.acked(s) && seqs[s] == 0 {
					missing = append(missing, s)
				}
			}
			t.Errorf("cycle %d: %s: %d acknowledged readings lost, first %v", cycle, d.id, lost, missing)
		}
		r.checkBoot(db, cycle, d.id, d.boot, seqs)
	}
	for _, p := range r.plain {
		r.checkPlain(db, cycle, p.ip)
	}
	return st
}

// checkBoot checks the loss accounting of an acknowledged device's boot (and
// its device row) against the rows.
func (r *cutRig) checkBoot(db *sql.DB, cycle int, id, boot string, seqs map[int64]int) {
	t := r.t
	var last, messages int64
	var missingJSON string
	err := db.QueryRow("SELECT last_seq, missing, messages FROM boots WHERE device = ? AND boot = ?", id, boot).
		Scan(&last, &missingJSON, &messages)
	if err == sql.ErrNoRows && len(seqs) == 0 {
		return
	}
	if err != nil {
		t.Fatalf("cycle %d: boots %s/%s: %v", cycle, id, boot, err)
	}
	var high int64
	for s := range seqs {
		high = max(high, s)
	}
	var want [][2]int64
	for s := int64(1); s <= high; s++ {
		if seqs[s] > 0 {
			continue
		}
		if len(want) > 0 && want[len(want)-1][1] == s-1 {
			want[len(want)-1][1] = s
		} else {
			want = append(want, [2]int64{s, s})
		}
	}
	var got [][2]int64
	json.Unmarshal([]byte(missingJSON), &got)
	if last != high || messages != int64(len(seqs)) || !slices.Equal(got, want) {
		t.Errorf("cycle %d: boot %s/%s says last_seq %d, %d messages, missing %s; its rows: highest %d, %d messages, missing %v",
			cycle, id, boot, last, messages, missingJSON, high, len(seqs), want)
	}
	var devMessages, devMissing, devGaps int64
	if err := db.QueryRow("SELECT messages, missing, gaps FROM devices WHERE device = ?", id).Scan(&devMessages, &devMissing, &devGaps); err != nil {
		t.Fatalf("cycle %d: devices %s: %v", cycle, id, err)
	}
	var missing int64
	for _, g := range want {
		missing += g[1] - g[0] + 1
	}
	if devMessages != int64(len(seqs)) || devMissing != missing || devGaps != int64(len(want)) {
		t.Errorf("cycle %d: device %s says %d messages, %d missing in %d gaps; its rows: %d messages, %d missing in %d gaps",
			cycle, id, devMessages, devMissing, devGaps, len(seqs), missing, len(want))
	}
}

// checkPlain checks a plain device's counters: it counts up from 1 and never
// resets, so the values missing are the holes below the highest one received.
func (r *cutRig) checkPlain(db *sql.DB, cycle int, ip string) {
	t := r.t
	rows, err := db.Query("SELECT CAST(payload AS TEXT) FROM messages WHERE device = ?", ip)
	if err != nil {
		t.Fatal(err)
	}
	var vals []int64
	for rows.Next() {
		var p string
		rows.Scan(&p)
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			t.Errorf("cycle %d: %s stored %q", cycle, ip, p)
		}
		vals = append(vals, v)
	}
	rows.Close()
	if len(vals) == 0 {
		return
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	var gaps, missing int64
	for i := 1; i < len(vals); i++ {
		if d := vals[i] - vals[i-1]; d > 1 {
			gaps++
			missing += d - 1
		} else if d == 0 {
			t.Errorf("cycle %d: %s: counter %d stored twice", cycle, ip, vals[i])
		}
	}
	var messages, dGaps, dMissing, last int64
	if err := db.QueryRow("SELECT messages, gaps, missing, last_counter FROM devices WHERE device = ?", ip).
		Scan(&messages, &dGaps, &dMissing, &last); err != nil {
		t.Fatalf("cycle %d: devices %s: %v", cycle, ip, err)
	}
	high := vals[len(vals)-1]
	if messages != int64(len(vals)) || dGaps != gaps || dMissing != missing || last != high {
		t.Errorf("cycle %d: device %s says %d messages, %d missing in %d gaps, last counter %d; its rows: %d messages, %d missing in %d gaps, highest %d",
			cycle, ip, messages, dMissing, dGaps, last, len(vals), missing, gaps, high)
	}
}

// failOnProblems reports what the devices themselves saw go wrong.
func (r *cutRig) failOnProblems(cycle int) {
	for _, d := range r.rawTCP {
		for _, p := range d.takeProblems() {
			r.t.Errorf("cycle %d: %s: %s", cycle, d.id, p)
		}
	}
	for _, d := range r.rawUDP {
		for _, p := range d.takeProblems() {
			r.t.Errorf("cycle %d: %s: %s", cycle, d.id, p)
		}
	}
}

func (r *cutRig) summary(n int, st cutStats, took time.Duration) {
	var bytes []int64
	var files, lost, back, torn int64
	for _, rep := range r.reports {
		bytes = append(bytes, rep.Bytes)
		files += int64(rep.Files)
		lost += int64(len(rep.Lost))
		back += int64(len(rep.Back))
		torn += int64(len(rep.Torn))
	}
	slices.Sort(bytes)
	var sum int64
	for _, b := range bytes {
		sum += b
	}
	per := map[string][2]int64{}
	for _, rep := range r.reports {
		for name, b := range rep.PerFile {
			v := per[name]
			per[name] = [2]int64{v[0] + 1, v[1] + b}
		}
	}
	var names []string
	for name := range per {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r.t.Logf("SUMMARY: %s: unsynced bytes dropped at %d of %d cuts, %d bytes in all", name, per[name][0], len(r.reports), per[name][1])
	}
	r.t.Logf("SUMMARY: %d cycles in %s; %s; the filesystem dropped per cut: median %d bytes, max %d, total %d bytes in %d files; %d names lost, %d names back, %d torn writes",
		n, took.Round(time.Second), st, bytes[len(bytes)/2], bytes[len(bytes)-1], sum, files, lost, back, torn)
}

func payloadOf(id string, seq int64) string { return fmt.Sprintf("v=%d dev=%s", seq, id) }

// hello says hello as a device and returns the server's last=.
func hello(addr, id, boot string) (int64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "INLET/1 id=%s boot=%s\n", id, boot)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	return parseHello(line)
}

func parseHello(line string) (int64, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "INLET/1 OK last=")
	if !ok {
		return 0, fmt.Errorf("hello answered %q", line)
	}
	return strconv.ParseInt(rest, 10, 64)
}

// tcpDevice speaks INLET/1 over TCP itself, so it sees every ACK and hello.
type tcpDevice struct {
	id, boot string

	mu        sync.Mutex
	next      int64 // the next seq to make
	acked     int64 // the highest ACK (cumulative)
	lastHello int64
	stopped   bool
	problems  []string
}

func (d *tcpDevice) ackedNow() int64 { d.mu.Lock(); defer d.mu.Unlock(); return d.acked }
func (d *tcpDevice) sentNow() int64  { d.mu.Lock(); defer d.mu.Unlock(); return d.next - 1 }
func (d *tcpDevice) stop()           { d.mu.Lock(); d.stopped = true; d.mu.Unlock() }

func (d *tcpDevice) problem(format string, args ...any) {
	d.mu.Lock()
	d.problems = append(d.problems, fmt.Sprintf(format, args...))
	d.mu.Unlock()
}

func (d *tcpDevice) takeProblems() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.problems
	d.problems = nil
	return p
}

func (d *tcpDevice) run(ctx context.Context, addr string, rng *rand.Rand) {
	for ctx.Err() == nil {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			sleepCtx(ctx, 20*time.Millisecond)
			continue
		}
		d.session(ctx, c, rng)
		c.Close()
	}
}

func (d *tcpDevice) session(ctx context.Context, c net.Conn, rng *rand.Rand) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "INLET/1 id=%s boot=%s\n", d.id, d.boot); err != nil {
		return
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	last, err := parseHello(line)
	if err != nil {
		d.problem("%v", err)
		return
	}
	d.mu.Lock()
	if last < d.acked || last < d.lastHello || last >= d.next {
		d.problems = append(d.problems, fmt.Sprintf("hello answered last=%d; acknowledged through %d, an earlier hello said %d, highest sent %d",
			last, d.acked, d.lastHello, d.next-1))
	}
	d.lastHello = max(d.lastHello, last)
	d.acked = max(d.acked, last) // last= acknowledges too
	d.mu.Unlock()
	c.SetDeadline(time.Time{})

	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			n, ok := strings.CutPrefix(strings.TrimSpace(line), "ACK ")
			seq, err := strconv.ParseInt(n, 10, 64)
			if !ok || err != nil {
				d.problem("unexpected answer %q", line)
				return
			}
			d.mu.Lock()
			if seq >= d.next {
				d.problems = append(d.problems, fmt.Sprintf("ACK %d of a seq never sent", seq))
			}
			d.acked = max(d.acked, seq)
			d.mu.Unlock()
		}
	}()
	defer func() { c.Close(); <-done }()
	seq := last + 1 // resend what the server does not have in order
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-tick.C:
		}
		var b []byte
		d.mu.Lock()
		for range 1 + rng.IntN(3) {
			if seq >= d.next {
				if d.stopped || d.next-1-d.acked >= 200 {
					break
				}
				d.next++
			}
			b = fmt.Appendf(b, "%d %s\n", seq, payloadOf(d.id, seq))
			seq++
		}
		d.mu.Unlock()
		if len(b) == 0 {
			continue
		}
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(b); err != nil {
			return
		}
	}
}

// udpDevice speaks acknowledged UDP itself: one datagram per reading, resent
// until its ACK arrives.
type udpDevice struct {
	id, boot string

	mu       sync.Mutex
	next     int64
	acked    map[int64]bool
	unacked  map[int64]time.Time // seq -> last sent
	stopped  bool
	problems []string
}

func (d *udpDevice) ackCount() int64 { d.mu.Lock(); defer d.mu.Unlock(); return int64(len(d.acked)) }
func (d *udpDevice) sentNow() int64  { d.mu.Lock(); defer d.mu.Unlock(); return d.next - 1 }
func (d *udpDevice) stop()           { d.mu.Lock(); d.stopped = true; d.mu.Unlock() }

func (d *udpDevice) ackedSet() map[int64]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[int64]bool, len(d.acked))
	for k := range d.acked {
		m[k] = true
	}
	return m
}

// prefix is the highest seq through which every reading is acknowledged.
func (d *udpDevice) prefix() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := int64(0)
	for d.acked[n+1] {
		n++
	}
	return n
}

func (d *udpDevice) takeProblems() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.problems
	d.problems = nil
	return p
}

func (d *udpDevice) run(ctx context.Context, addr string) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		panic(err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	go func() {
		buf := make([]byte, 512)
		for ctx.Err() == nil {
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				continue
			}
			s, ok := strings.CutPrefix(strings.TrimSpace(string(buf[:n])), "ACK ")
			seq, err := strconv.ParseInt(s, 10, 64)
			d.mu.Lock()
			if !ok || err != nil || seq >= d.next {
				d.problems = append(d.problems, fmt.Sprintf("unexpected answer %q", buf[:n]))
			} else {
				d.acked[seq] = true
				delete(d.unacked, seq)
			}
			d.mu.Unlock()
		}
	}()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var send []int64
		now := time.Now()
		d.mu.Lock()
		if !d.stopped && len(d.unacked) < 32 {
			d.unacked[d.next] = time.Time{}
			d.next++
		}
		for seq, at := range d.unacked {
			if now.Sub(at) > 300*time.Millisecond {
				send = append(send, seq)
				d.unacked[seq] = now
			}
		}
		d.mu.Unlock()
		for _, seq := range send {
			c.WriteToUDP(fmt.Appendf(nil, "INLET/1 id=%s boot=%s seq=%d\n%s", d.id, d.boot, seq, payloadOf(d.id, seq)), raddr)
		}
	}
}

// clientDevice is the Go client, its outbox on a normal disk.
type clientDevice struct {
	s  *client.Sender
	id string

	mu      sync.Mutex
	sent    int64 // the highest seq Send returned
	flushed int64 // every seq through this one is acknowledged (a Flush returned)
	stopped bool
}

func (c *clientDevice) stop() { c.mu.Lock(); c.stopped = true; c.mu.Unlock() }

func (c *clientDevice) send(ctx context.Context) {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.mu.Lock()
		next, stopped := c.sent+1, c.stopped
		c.mu.Unlock()
		if stopped {
			continue
		}
		seq, err := c.s.Send([]byte(payloadOf(c.id, next)))
		if err != nil {
			continue // the outbox is full while the server is down
		}
		if seq != next {
			panic(fmt.Sprintf("%s: Send returned seq %d, want %d", c.id, seq, next))
		}
		c.mu.Lock()
		c.sent = seq
		c.mu.Unlock()
	}
}

func (c *clientDevice) flush(ctx context.Context) {
	for ctx.Err() == nil {
		c.mu.Lock()
		target := c.sent
		c.mu.Unlock()
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.s.Flush(fctx)
		cancel()
		if err == nil {
			c.mu.Lock()
			c.flushed = max(c.flushed, target)
			c.mu.Unlock()
			sleepCtx(ctx, 20*time.Millisecond)
		}
	}
}

// plainDevice is a tutorial sketch: a counter, as lines over TCP or as
// NUL-padded datagrams, from an IP address of its own.
type plainDevice struct {
	ip, network string
}

func (p *plainDevice) run(ctx context.Context, addr string) {
	n := int64(0)
	for ctx.Err() == nil {
		var c net.Conn
		var err error
		if p.network == "tcp" {
			d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(p.ip)}}
			c, err = d.DialContext(ctx, "tcp", addr)
		} else {
			d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(p.ip)}}
			c, err = d.DialContext(ctx, "udp", addr)
		}
		if err != nil {
			sleepCtx(ctx, 20*time.Millisecond)
			continue
		}
		for ctx.Err() == nil {
			n++
			var b []byte
			if p.network == "tcp" {
				b = fmt.Appendf(nil, "%d\n", n)
			} else {
				b = fmt.Appendf(nil, "%d\x00\x00\x00\x00", n)
			}
			c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(b); err != nil && p.network == "tcp" {
				break
			}
			sleepCtx(ctx, 25*time.Millisecond)
		}
		c.Close()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// freePorts picks a TCP and a UDP port on 127.0.0.1 for inlet to keep across
// restarts.
func freePorts(t testing.TB) (string, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp := l.Addr().String()
	l.Close()
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udp := u.LocalAddr().String()
	u.Close()
	return tcp, udp
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// buildInlet is the real binary, built once per test run (without -race: the
// pure-Go SQLite would measure the race detector).
func buildInlet(t testing.TB) string { return inlettest.Binary(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	inlettest.Cleanup()
	os.Exit(code)
}

// inletProc is a running `inlet serve`.
type inletProc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 {
		b.b.Reset()
	}
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startInlet runs `inlet serve` and waits for its ready line.
func startInlet(t testing.TB, bin string, args ...string) *inletProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	// If the test itself is killed, inlet goes too (it would keep the mount busy).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &inletProc{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(p.kill)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			ready <- sc.Text()
		}
		close(ready)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-ready:
		var ri struct{ Event string }
		if !ok || json.Unmarshal([]byte(line), &ri) != nil || ri.Event != "ready" {
			t.Fatalf("inlet did not start (ready line %q):\n%s", line, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no ready line after 30s:\n%s", p.stderr.String())
	}
	return p
}

// kill SIGKILLs the server and waits until it is gone. Safe to call twice.
func (p *inletProc) kill() {
	p.cmd.Process.Kill()
	err := <-p.exited
	p.exited <- err
}
