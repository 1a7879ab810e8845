package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/inletdev/inlet/internal/pgtest"
)

// inlet migrate copies a SQLite history, ids and accounting included, into
// PostgreSQL; a second run and a run after a cut-short copy change nothing or
// finish it; a node on PostgreSQL continues the accounting; a run after nodes
// wrote is refused.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	// Separate connections carry no order between them: each reading waits for
	// the one before it to commit, as a device's second between readings would.
	sent := 0
	for d := range 3 {
		for n := 1; n <= 30; n++ {
			if n == 10+d { // some loss
				continue
			}
			if err := sendOnce(fmt.Sprintf("127.0.0.%d", 70+d), m.tcpAddr(), fmt.Sprintf("%d\r\n", n)); err != nil {
				t.Fatal(err)
			}
			sent++
			waitCommitted(t, m, int64(sent))
		}
	}
	if out, code := runCmd(t, "send", "--addr", m.tcpAddr(), "--ack", "--device", "esp-m", "--mode", "stream", "--every", "0", "--count", "40"); code != 0 {
		t.Fatalf("send --ack: exit %d: %s", code, out)
	}
	waitCommitted(t, m, 3*29+40)
	MustClose(t, m)
	lite := cfg.DB
	url := pgtest.URL(t)

	export := func(db string) string {
		out, code := runCmd(t, "export", "--db", db)
		if code != 0 {
			t.Fatalf("export --db %s: exit %d", db, code)
		}
		return out
	}
	devs := func(db string) string {
		out, code := runCmd(t, "devices", "--db", db, "--format", "json")
		if code != 0 {
			t.Fatalf("devices --db %s: exit %d", db, code)
		}
		return out
	}
	migrate := func() (string, int) { return runCmd(t, "migrate", "--from", lite, "--to", url) }
	wantRows, wantDevs := export(lite), devs(lite)
	if strings.Count(wantRows, "\n") != 3*29+40 || !strings.Contains(wantDevs, "esp-m") {
		t.Fatalf("the SQLite history: %d rows\n%s", strings.Count(wantRows, "\n"), wantDevs)
	}
	check := func(when string) {
		t.Helper()
		if got := export(url); got != wantRows {
			t.Fatalf("%s: export differs\n got %s\nwant %s", when, got, wantRows)
		}
		if got := devs(url); got != wantDevs {
			t.Fatalf("%s: devices differ\n got %s\nwant %s", when, got, wantDevs)
		}
	}
	out, code := migrate()
	if code != 0 || !strings.Contains(out, "127 copied") {
		t.Fatalf("migrate: exit %d: %s", code, out)
	}
	check("first run")
	out, code = migrate()
	if code != 0 || !strings.Contains(out, " 0 copied") {
		t.Fatalf("migrate again: exit %d: %s", code, out)
	}
	check("second run")
	// A copy cut short: the newest rows and the accounting are missing.
	if err := pgtest.Exec(ctx, url, "DELETE FROM messages WHERE id > 50"); err != nil {
		t.Fatal(err)
	}
	if err := pgtest.Exec(ctx, url, "UPDATE devices SET messages = 0, missing = 0"); err != nil {
		t.Fatal(err)
	}
	if out, code = migrate(); code != 0 || !strings.Contains(out, "77 copied") {
		t.Fatalf("migrate after a cut-short copy: exit %d: %s", code, out)
	}
	check("after a cut-short copy")

	// A node on PostgreSQL carries on: the device's counter continues, ids
	// continue above the copied ones.
	pcfg := testConfig(t)
	pcfg.DB = url
	pm := MustRun(t, pcfg)
	for n := 31; n <= 35; n++ {
		if err := sendOnce("127.0.0.70", pm.tcpAddr(), fmt.Sprintf("%d\r\n", n)); err != nil {
			t.Fatal(err)
		}
		waitCommitted(t, pm, int64(n-30))
	}
	waitCommitted(t, pm, 5)
	MustClose(t, pm)
	ds := devices(t, lite)
	before := ds["127.0.0.70"]
	out, _ = runCmd(t, "devices", "--db", url, "--format", "json")
	wantDev := fmt.Sprintf(`"device": "127.0.0.70",
    "kind": "counter",
    "messages": %d,`, before.Messages+5)
	if !strings.Contains(out, wantDev) || !strings.Contains(out, `"missing": 1,`) {
		t.Fatalf("after 5 more messages on PostgreSQL, want %s and missing 1:\n%s", wantDev, out)
	}
	out, _ = runCmd(t, "export", "--db", url, "--device", "127.0.0.70", "--format", "csv")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	f := strings.Split(lines[len(lines)-1], ",")
	if id, _ := strconv.Atoi(f[0]); id <= 3*29+40 || f[7] != "35" {
		t.Fatalf("the newest row %q: want an id above the copied ones' and payload 35", lines[len(lines)-1])
	}
	// Nodes wrote: a migrate now would mix two histories.
	if out, code = migrate(); code == 0 {
		t.Fatalf("migrate after nodes wrote: exit 0: %s", out)
	}
}
