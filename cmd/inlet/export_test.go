package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/record"
)

// runCmd runs an inlet subcommand in-process and returns its stdout.
func runCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	if code != 0 {
		t.Logf("inlet %v: exit %d: %s", args, code, errb.String())
	}
	return out.String(), code
}

func TestExportAndDevices(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	for _, line := range []string{"1\r\n", "2\r\n", "temp=21.5;room=lab\n", "\xff\xfebinary\n", `{"t":-3.5,"ok":true}` + "\n"} {
		if err := sendOnce("127.0.0.50", m.tcpAddr(), line); err != nil {
			t.Fatal(err)
		}
	}
	if err := sendOnce("127.0.0.51", m.tcpAddr(), "9\n"); err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, m, 6)

	// While the server runs: NDJSON for one device.
	out, code := runCmd(t, "export", "--db", cfg.DB, "--device", "127.0.0.50")
	if code != 0 {
		t.Fatal("export failed")
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("ndjson: %d lines:\n%s", len(lines), out)
	}
	// Connect-per-message sends may be stored out of order: find each by payload.
	byPayload := make(map[string]map[string]any)
	for _, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		p, _ := r["payload"].(string)
		if p == "" {
			p = "base64"
		}
		byPayload[p] = r
	}
	recs := []map[string]any{byPayload["1"], byPayload["2"], byPayload["temp=21.5;room=lab"], byPayload["base64"],
		byPayload[`{"t":-3.5,"ok":true}`]}
	if recs[0]["payload"] != "1" || recs[0]["device"] != "127.0.0.50" || recs[0]["transport"] != "tcp" ||
		recs[0]["seq"] != nil || recs[0]["boot"] != nil {
		t.Errorf("first record %v", recs[0])
	}
	if f, _ := recs[2]["fields"].(map[string]any); f["temp"] != 21.5 || f["room"] != "lab" {
		t.Errorf("kv fields %v", recs[2])
	}
	if _, has := recs[3]["payload"]; has || recs[3]["payload_base64"] != "//5iaW5hcnk=" {
		t.Errorf("binary payload %v", recs[3])
	}
	if f, _ := recs[4]["fields"].(map[string]any); f["t"] != -3.5 || len(f) != 1 {
		t.Errorf("json fields %v", recs[4])
	}
	ts, err := time.Parse(time.RFC3339Nano, recs[0]["received_at"].(string))
	if err != nil || time.Since(ts) > time.Minute {
		t.Errorf("received_at %v: %v", recs[0]["received_at"], err)
	}

	// CSV of everything: header plus six rows.
	out, _ = runCmd(t, "export", "--db", cfg.DB, "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 7 || strings.Join(rows[0], ",") != "id,received_at,device,transport,remote,boot,seq,payload,payload_base64,fields" {
		t.Fatalf("csv:\n%s", out)
	}
	var sawBinary, sawCounter bool
	for _, r := range rows[1:] {
		sawBinary = sawBinary || (r[7] == "" && r[8] == "//5iaW5hcnk=")
		sawCounter = sawCounter || (r[7] == "1" && r[9] == `{"value":1}` && r[2] == "127.0.0.50")
	}
	if !sawBinary || !sawCounter {
		t.Errorf("csv rows %q", rows[1:])
	}

	// Time bounds.
	out, _ = runCmd(t, "export", "--db", cfg.DB, "--since", "1h", "--until", time.Now().Add(time.Hour).Format(time.RFC3339))
	if n := strings.Count(out, "\n"); n != 6 {
		t.Errorf("--since 1h: %d messages", n)
	}
	out, _ = runCmd(t, "export", "--db", cfg.DB, "--since", time.Now().Add(time.Hour).Format(time.RFC3339))
	if out != "" {
		t.Errorf("--since the future: %q", out)
	}
	if _, code := runCmd(t, "export", "--db", cfg.DB, "--since", "yesterday-ish"); code != 2 { // a usage error (docs/cli.md)
		t.Errorf("bad --since: exit %d, want 2", code)
	}

	// Devices, as JSON and as a table.
	out, _ = runCmd(t, "devices", "--db", cfg.DB, "--format", "json")
	var devs []record.Device
	if err := json.Unmarshal([]byte(out), &devs); err != nil {
		t.Fatalf("devices json: %v\n%s", err, out)
	}
	if len(devs) != 2 || devs[0].Device != "127.0.0.50" || devs[0].Messages != 5 || *devs[0].LastCounter != 2 ||
		devs[1].Messages != 1 || devs[0].Gaps != 0 {
		t.Errorf("devices %+v", devs)
	}
	out, _ = runCmd(t, "devices", "--db", cfg.DB)
	if !strings.Contains(out, "127.0.0.51") || !strings.Contains(out, "duplicates") {
		t.Errorf("devices table:\n%s", out)
	}
	MustClose(t, m)

	// Not a database: a clear error, not a crash.
	if _, code := runCmd(t, "export", "--db", cfg.DB+".missing"); code != 1 {
		t.Errorf("missing db: exit %d", code)
	}
}
