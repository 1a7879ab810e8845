package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"regexp"
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
		devs[1].Messages != 1 || devs[0].Kind != "values" || devs[0].Gaps != nil {
		t.Errorf("devices %+v", devs)
	}
	out, _ = runCmd(t, "devices", "--db", cfg.DB)
	if !strings.Contains(out, "127.0.0.51") || !strings.Contains(out, "values: not a counter, loss unknown") {
		t.Errorf("devices table:\n%s", out)
	}
	MustClose(t, m)

	// Not a database: a clear error, not a crash.
	if _, code := runCmd(t, "export", "--db", cfg.DB+".missing"); code != 1 {
		t.Errorf("missing db: exit %d", code)
	}
}

// A tutorial counter, two sensors sending lone integers and an acknowledged
// device: /api/devices and inlet devices say which is a counter, the sensors
// show no loss (null: unknown) and stay clean, the counter's loss is exact, and
// the table fits 100 columns with local 24-hour times, one layout for all.
func TestDevicesKinds(t *testing.T) {
	cfg := testConfig(t)
	m := MustRun(t, cfg)
	tcp := m.tcpAddr()
	counter := htDial(t, "127.0.0.52", tcp)
	counter.send(counters(1, 5)...)
	counter.send(counters(8, 30)...) // 6 and 7 lost
	adc := htDial(t, "127.0.0.53", tcp)
	for i := range 60 {
		adc.send(fmt.Sprintf("%d\r\n", 512+(i*37)%41-20)) // analogRead() of a steady input, with noise
	}
	temp := htDial(t, "127.0.0.54", tcp)
	for _, v := range []int{20, 20, 21, 21, 21, 20, 20, 21, 22, 22, 22, 21, 21, 21, 21, 20, 20, 20, 21, 21, 22, 22, 23, 23, 22} {
		temp.send(fmt.Sprintf("%d\r\n", v))
	}
	ack, ok := dialAck(t, tcp, "INLET/1 id=lab-9 boot=b1\n")
	if ok != "INLET/1 OK last=0" {
		t.Fatalf("hello: %q", ok)
	}
	ack.send("1 t=1\n", "2 t=2\n", "4 t=4\n")
	ack.ackedUpTo(4)
	waitCommitted(t, m, 28+60+25+3)

	type dev struct {
		Device  string `json:"device"`
		Kind    string `json:"kind"`
		Missing *int64 `json:"missing"`
		Gaps    *int64 `json:"gaps"`
		Resets  *int64 `json:"resets"`
		Dups    *int64 `json:"duplicates"`
		Lost    *int64 `json:"lost"`
		Clean   bool   `json:"clean"`
	}
	var api []dev
	raw := htJSON(t, htBase(m)+"/api/devices", &api)
	str := func(p *int64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	want := map[string]string{
		"127.0.0.52": "counter missing=2 gaps=1 dups=0 resets=0 lost=2 clean=false",
		"127.0.0.53": "values missing=null gaps=null dups=null resets=null lost=null clean=true",
		"127.0.0.54": "values missing=null gaps=null dups=null resets=null lost=null clean=true",
		"lab-9":      "acked missing=1 gaps=1 dups=0 resets=0 lost=1 clean=false",
	}
	if len(api) != len(want) {
		t.Fatalf("/api/devices: %s", raw)
	}
	show := func(d dev) string {
		return fmt.Sprintf("%s missing=%s gaps=%s dups=%s resets=%s lost=%s clean=%v", d.Kind, str(d.Missing), str(d.Gaps),
			str(d.Dups), str(d.Resets), str(d.Lost), d.Clean)
	}
	for _, d := range api {
		if got := show(d); got != want[d.Device] {
			t.Errorf("/api/devices %s: %s\n want %s", d.Device, got, want[d.Device])
		}
	}
	// /api/overview lists the addresses devices can reach: always an array.
	var ov struct {
		Hosts []string `json:"hosts"`
	}
	if raw := htJSON(t, htBase(m)+"/api/overview", &ov); ov.Hosts == nil {
		t.Errorf("/api/overview without a hosts array: %s", raw)
	}

	// The chart marks a counter's loss, never a sensor's ups and downs.
	for dev, want := range map[string]string{"127.0.0.52": "gap 6-7", "127.0.0.53": "", "127.0.0.54": ""} {
		var s struct {
			Markers []struct {
				Kind     string `json:"kind"`
				From, To int64
			} `json:"markers"`
		}
		htJSON(t, htBase(m)+"/api/series?device="+dev, &s)
		var got []string
		for _, mk := range s.Markers {
			got = append(got, fmt.Sprintf("%s %d-%d", mk.Kind, mk.From, mk.To))
		}
		if strings.Join(got, ",") != want {
			t.Errorf("/api/series?device=%s markers %q, want %q", dev, got, want)
		}
	}

	var cli []dev
	out, _ := runCmd(t, "devices", "--db", cfg.DB, "--format", "json")
	if err := json.Unmarshal([]byte(out), &cli); err != nil || len(cli) != len(api) {
		t.Fatalf("devices json: %v\n%s", err, out)
	}
	for i := range cli {
		cli[i].Lost, cli[i].Clean = api[i].Lost, api[i].Clean // not in the CLI record
		if show(cli[i]) != show(api[i]) || cli[i].Device != api[i].Device {
			t.Errorf("inlet devices %s: %s, the API %s", cli[i].Device, show(cli[i]), show(api[i]))
		}
	}

	out, _ = runCmd(t, "devices", "--db", cfg.DB)
	t.Logf("inlet devices:\n%s", out)
	localTime := regexp.MustCompile(`\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b`)
	var firstSeenCol []int
	rowOf := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if len(line) > 100 {
			t.Errorf("line of %d columns: %q", len(line), line)
		}
		if strings.HasPrefix(line, "device ") {
			firstSeenCol = append(firstSeenCol, strings.Index(line, "first_seen"))
		}
		if f := strings.Fields(line); len(f) > 0 {
			rowOf[f[0]+" "+fmt.Sprint(len(f))] = line
		}
	}
	for _, w := range []string{"counters: loss counted", "values: not a counter, loss unknown", "acknowledged (INLET/1)", "boots of acknowledged devices"} {
		if !strings.Contains(out, w) {
			t.Errorf("no %q in the table", w)
		}
	}
	// device, messages, date, time, date, time, and the four loss figures for
	// counters and acknowledged devices only.
	for _, r := range []string{"127.0.0.52 10", "127.0.0.53 6", "127.0.0.54 6", "lab-9 10"} {
		line, ok := rowOf[r]
		if !ok {
			t.Errorf("no row %q", r)
			continue
		}
		if n := len(localTime.FindAllString(line, -1)); n != 2 {
			t.Errorf("row %q: %d local times, want first and last seen", line, n)
		}
	}
	if !strings.Contains(rowOf["127.0.0.52 10"], " 2     1     0       0") {
		t.Errorf("counter row %q, want missing 2, gaps 1, no dups or resets, right-aligned", rowOf["127.0.0.52 10"])
	}
	if len(firstSeenCol) != 4 || firstSeenCol[0] != firstSeenCol[1] || firstSeenCol[1] != firstSeenCol[2] {
		t.Errorf("first_seen at columns %v: the kinds' tables are not aligned alike (the boots table has none)", firstSeenCol)
	}
	if strings.Contains(out, ".000") || strings.Contains(out, "T") && strings.Contains(out, "Z\n") {
		t.Errorf("RFC 3339 times in the table")
	}
	MustClose(t, m)
}
