package httpapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet"
	"github.com/inletdev/inlet/record"
)

var nineDigits = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)

func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// ---- /api/devices ------------------------------------------------------------

type apiBoot struct {
	Boot          string     `json:"boot"`
	Messages      int64      `json:"messages"`
	LastSeq       int64      `json:"last_seq"`
	Durable       int64      `json:"durable"`
	Missing       int64      `json:"missing"`
	MissingRanges [][2]int64 `json:"missing_ranges"`
	FirstSeen     string     `json:"first_seen"`
	LastSeen      string     `json:"last_seen"`
}

type apiDevice struct {
	Device        string          `json:"device"`
	Messages      int64           `json:"messages"`
	FirstSeen     string          `json:"first_seen"`
	LastSeen      string          `json:"last_seen"`
	LastCounter   *int64          `json:"last_counter"`
	Gaps          int64           `json:"gaps"`
	Missing       int64           `json:"missing"`
	Duplicates    int64           `json:"duplicates"`
	Resets        int64           `json:"resets"`
	Boots         []apiBoot       `json:"boots"`
	BootsTotal    int64           `json:"boots_total"`
	Lost          int64           `json:"lost"`
	Clean         bool            `json:"clean"`
	LastPayload   *string         `json:"last_payload"`
	LastFields    json.RawMessage `json:"last_fields"`
	RatePerMinute float64         `json:"rate_per_minute"`
	AgeSeconds    float64         `json:"age_seconds"`
}

var deviceKeys = []string{"device", "messages", "first_seen", "last_seen", "last_counter", "gaps", "missing",
	"duplicates", "resets", "boots", "boots_total", "lost", "clean", "last_payload", "last_fields", "rate_per_minute", "age_seconds"}

// cliDevices is `inlet devices --format json` (docs/cli.md), built as the
// command builds it.
func (e *env) cliDevices() []map[string]json.RawMessage {
	e.t.Helper()
	ctx := context.Background()
	devs, err := e.store.Devices(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	boots, err := e.store.Boots(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []map[string]json.RawMessage
	for i := range devs {
		r := record.NewDevice(&devs[i])
		for j := range boots {
			if boots[j].Device == r.Device {
				r.Boots = append(r.Boots, record.NewBoot(&boots[j]))
			}
		}
		b, _ := json.Marshal(r)
		var m map[string]json.RawMessage
		json.Unmarshal(b, &m)
		out = append(out, m)
	}
	return out
}

func TestDevices(t *testing.T) {
	e := newEnv(t)
	// Before any traffic: an empty array, not null.
	resp, b := get(t, e.base+"/api/devices")
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("no devices: %s %q, want 200 []", resp.Status, b)
	}

	// A: a counter: 1..5, a gap (6, 7), 8..20, then a reset to 1..3.
	e.send(counterMsgs("10.0.0.61", 1, 5)...)
	e.send(counterMsgs("10.0.0.61", 8, 20)...)
	e.send(counterMsgs("10.0.0.61", 1, 3)...)
	// B: clean, one message at a time; C: key=value; E: binary; U: a UDP datagram.
	for n := 1; n <= 6; n++ {
		e.send(msg("10.0.0.62", strconv.Itoa(n)))
	}
	e.send(msg("10.0.0.63", "temp=21.5;room=lab"), msg("10.0.0.64", "\xff\xfebin"), udp("10.0.0.65", "5"))
	// An acknowledged device: boot b1 with seqs 1,2,3,6 (4 and 5 missing) and a
	// resend of 2; then a reboot, b2, with seq 1.
	e.send(acked("probe-7", "b1", 1, "t=1"), acked("probe-7", "b1", 2, "t=2"), acked("probe-7", "b1", 3, "t=3"), acked("probe-7", "b1", 6, "t=6"))
	e.writer.Submit(context.Background(), []inlet.Message{acked("probe-7", "b1", 2, "t=2")}) // a duplicate: not stored
	waitFor(t, "the duplicate to be counted", 10*time.Second, func() bool { return e.stats.Duplicates.Load() == 1 })
	e.send(acked("probe-7", "b2", 1, "t=100"))

	var devs []apiDevice
	raw := getJSON(t, e.base+"/api/devices", &devs)
	var rawDevs []map[string]json.RawMessage
	json.Unmarshal(raw, &rawDevs)
	for _, rd := range rawDevs {
		for _, k := range deviceKeys {
			if _, ok := rd[k]; !ok {
				t.Errorf("device %s: no %q member", rd["device"], k)
			}
		}
	}
	if len(devs) != 6 {
		t.Fatalf("%d devices, want 6: %s", len(devs), raw)
	}
	if !slices.IsSortedFunc(devs, func(x, y apiDevice) int { return strings.Compare(x.Device, y.Device) }) {
		t.Errorf("devices not ordered by device: %s", raw)
	}
	by := make(map[string]apiDevice)
	for i, d := range devs {
		by[d.Device] = d
		if !nineDigits.MatchString(d.FirstSeen) || !nineDigits.MatchString(d.LastSeen) {
			t.Errorf("%s: times %q %q, want RFC 3339 UTC with nine digits", d.Device, d.FirstSeen, d.LastSeen)
		}
		if d.RatePerMinute <= 0 {
			t.Errorf("%s: rate_per_minute %v, want > 0 right after its traffic", d.Device, d.RatePerMinute)
		}
		if d.AgeSeconds < 0 || d.AgeSeconds > 60 {
			t.Errorf("%s: age_seconds %v", d.Device, d.AgeSeconds)
		}
		if d.Lost != d.Missing {
			t.Errorf("%s: lost %d, missing %d: lost is missing counter values plus missing seqs", d.Device, d.Lost, d.Missing)
		}
		wantClean := d.Missing == 0 && d.Gaps == 0 && d.Duplicates == 0 && d.Resets == 0
		if d.Clean != wantClean {
			t.Errorf("%s: clean %v with %+v", d.Device, d.Clean, d)
		}
		if d.Device != "probe-7" && (string(rawDevs[i]["boots"]) != "[]" || d.BootsTotal != 0) {
			t.Errorf("%s: boots %s, boots_total %d, want [] and 0 for a plain device", d.Device, rawDevs[i]["boots"], d.BootsTotal)
		}
	}
	i64 := func(p *int64) string {
		if p == nil {
			return "null"
		}
		return strconv.FormatInt(*p, 10)
	}
	str := func(p *string) string {
		if p == nil {
			return "null"
		}
		return strconv.Quote(*p)
	}
	for _, c := range []struct {
		dev                         string
		msgs                        int64
		last                        string
		gaps, missing, dups, resets int64
		clean                       bool
		payload, fields             string
	}{
		{"10.0.0.61", 21, "3", 1, 2, 0, 1, false, `"3"`, `{"value":3}`},
		{"10.0.0.62", 6, "6", 0, 0, 0, 0, true, `"6"`, `{"value":6}`},
		{"10.0.0.63", 1, "null", 0, 0, 0, 0, true, `"temp=21.5;room=lab"`, `{"temp":21.5,"room":"lab"}`},
		{"10.0.0.64", 1, "null", 0, 0, 0, 0, true, `null`, `null`},
		{"10.0.0.65", 1, "5", 0, 0, 0, 0, true, `"5"`, `{"value":5}`},
		{"probe-7", 5, "null", 1, 2, 1, 1, false, `"t=100"`, `{"t":100}`},
	} {
		d, ok := by[c.dev]
		if !ok {
			t.Errorf("device %s missing from %s", c.dev, raw)
			continue
		}
		if d.Messages != c.msgs || i64(d.LastCounter) != c.last || d.Gaps != c.gaps || d.Missing != c.missing ||
			d.Duplicates != c.dups || d.Resets != c.resets || d.Clean != c.clean || d.Lost != c.missing {
			t.Errorf("%s: messages %d last_counter %s gaps %d missing %d duplicates %d resets %d lost %d clean %v;\n"+
				"want %d %s %d %d %d %d %d %v", c.dev, d.Messages, i64(d.LastCounter), d.Gaps, d.Missing, d.Duplicates,
				d.Resets, d.Lost, d.Clean, c.msgs, c.last, c.gaps, c.missing, c.dups, c.resets, c.missing, c.clean)
		}
		if str(d.LastPayload) != c.payload {
			t.Errorf("%s: last_payload %s, want %s", c.dev, str(d.LastPayload), c.payload)
		}
		var g, w any
		json.Unmarshal(d.LastFields, &g)
		json.Unmarshal([]byte(c.fields), &w)
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("%s: last_fields %s, want %s", c.dev, d.LastFields, c.fields)
		}
	}

	// The acknowledged device's boots.
	p := by["probe-7"]
	if len(p.Boots) != 2 || p.BootsTotal != 2 {
		t.Fatalf("probe-7 boots %+v (boots_total %d), want b1 and b2", p.Boots, p.BootsTotal)
	}
	boots := map[string]apiBoot{p.Boots[0].Boot: p.Boots[0], p.Boots[1].Boot: p.Boots[1]}
	b1, b2 := boots["b1"], boots["b2"]
	if b1.Messages != 4 || b1.LastSeq != 6 || b1.Durable != 3 || b1.Missing != 2 ||
		fmt.Sprint(b1.MissingRanges) != "[[4 5]]" || !nineDigits.MatchString(b1.FirstSeen) || !nineDigits.MatchString(b1.LastSeen) {
		t.Errorf("boot b1 %+v, want 4 messages, last_seq 6, durable 3, missing 2 [[4 5]]", b1)
	}
	if b2.Messages != 1 || b2.LastSeq != 1 || b2.Durable != 1 || b2.Missing != 0 || b2.MissingRanges == nil || len(b2.MissingRanges) != 0 {
		t.Errorf("boot b2 %+v, want 1 message, last_seq 1, durable 1, missing_ranges []", b2)
	}

	// The same record as inlet devices --format json (docs/cli.md), plus live figures.
	cli := e.cliDevices()
	if len(cli) != len(rawDevs) {
		t.Fatalf("inlet devices lists %d, the API %d", len(cli), len(rawDevs))
	}
	for i, c := range cli {
		for k, v := range c {
			if got := rawDevs[i][k]; !bytes.Equal(compactJSON(got), compactJSON(v)) {
				t.Errorf("device %s: %s = %s in the API, %s in inlet devices", c["device"], k, got, v)
			}
		}
	}
}

// A device with many boots (deep sleep: a boot per wake-up) lists its 10 most
// recent, oldest first, and counts them all.
func TestDevicesRecentBoots(t *testing.T) {
	e := newEnv(t)
	for i := 1; i <= 13; i++ {
		e.send(acked("sleepy", fmt.Sprintf("w%02d", i), 1, "x=1"))
	}
	var devs []apiDevice
	getJSON(t, e.base+"/api/devices", &devs)
	if len(devs) != 1 || devs[0].BootsTotal != 13 || len(devs[0].Boots) != 10 {
		t.Fatalf("devices %+v, want one with 10 boots listed of 13", devs)
	}
	var names []string
	for _, b := range devs[0].Boots {
		names = append(names, b.Boot)
	}
	if got := strings.Join(names, ","); got != "w04,w05,w06,w07,w08,w09,w10,w11,w12,w13" {
		t.Errorf("boots listed %s, want the 10 most recent, oldest first", got)
	}
}

// After a restart on the same database, last_payload and last_fields come
// from the store; rates start again from zero.
func TestDevicesAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.send(msg("10.0.0.66", "1"), msg("10.0.0.66", "2"), msg("10.0.0.66", "temp=3.5"), msg("10.0.0.67", "\xff"))
	e.close()

	e = newEnvAt(t, e.db)
	var devs []apiDevice
	raw := getJSON(t, e.base+"/api/devices", &devs)
	if len(devs) != 2 {
		t.Fatalf("devices after restart: %s", raw)
	}
	d, x := devs[0], devs[1]
	if d.Device != "10.0.0.66" || d.Messages != 3 || d.LastPayload == nil || *d.LastPayload != "temp=3.5" ||
		string(compactJSON(d.LastFields)) != `{"temp":3.5}` || d.RatePerMinute != 0 || d.LastCounter == nil || *d.LastCounter != 2 {
		t.Errorf("device after restart: %+v (last_payload %v)", d, d.LastPayload)
	}
	if x.LastPayload != nil || string(x.LastFields) != "null" {
		t.Errorf("binary device after restart: last_payload %v last_fields %s, want null, null", x.LastPayload, x.LastFields)
	}
}

// ---- /api/messages -----------------------------------------------------------

// exportLines is what inlet export writes for msgs: its NDJSON records.
func exportLines(msgs []inlet.Stored) []string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	var out []string
	for i := range msgs {
		buf.Reset()
		enc.Encode(record.FromStored(&msgs[i]))
		out = append(out, buf.String())
	}
	return out
}

// exportCSV is what inlet export --format csv writes for msgs.
func exportCSV(msgs []inlet.Stored) string {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	cw.Write(record.CSVHeader)
	for i := range msgs {
		cw.Write(record.CSV(&msgs[i]))
	}
	cw.Flush()
	return buf.String()
}

func TestMessages(t *testing.T) {
	e := newEnv(t)
	const A, B, U, D = "10.0.0.71", "10.0.0.72", "10.0.0.73", "10.0.0.74"
	t0 := time.Now()
	e.send(counterMsgs(A, 1, 4)...)
	e.send(udp(U, "1"), udp(U, "2"))
	t1 := time.Now()
	time.Sleep(2 * time.Millisecond)
	e.send(counterMsgs(A, 5, 7)...)
	e.send(counterMsgs(B, 1, 3)...)
	t2 := time.Now()
	time.Sleep(2 * time.Millisecond)
	e.send(counterMsgs(A, 8, 10)...)
	e.send(counterMsgs(D, 1, 1100)...)
	const total = 6 + 6 + 3 + 1100

	all := e.stored(inlet.Query{})
	if len(all) != total {
		t.Fatalf("store holds %d, want %d", len(all), total)
	}
	lines := exportLines(all)
	exportOut := strings.Join(lines, "")
	getMsgs := func(q string) []apiMessage {
		t.Helper()
		var out []apiMessage
		b := getJSON(t, e.base+"/api/messages?"+q, &out)
		if out == nil {
			t.Errorf("?%s: %s, want an array", q, b)
		}
		return out
	}
	msgIDs := func(ms []apiMessage) []int64 {
		out := make([]int64, len(ms))
		for i := range ms {
			out[i] = ms[i].ID
		}
		return out
	}
	filter := func(f func(*inlet.Stored) bool) []int64 {
		out := []int64{}
		for i := range all {
			if f(&all[i]) {
				out = append(out, all[i].ID)
			}
		}
		return out
	}
	wantIDs := func(what string, got []apiMessage, want []int64) {
		t.Helper()
		if g := msgIDs(got); !slices.Equal(g, want) {
			t.Errorf("%s: ids %v, want %v", what, g, want)
		}
	}

	// JSON: the default limit is 1000, oldest first; each element is the export record.
	first := getMsgs("")
	wantIDs("default", first, ids(all[:1000]))
	for i, r := range first[:20] {
		b, _ := json.Marshal(r)
		var want apiMessage
		json.Unmarshal([]byte(lines[i]), &want)
		w, _ := json.Marshal(want)
		if !bytes.Equal(b, w) {
			t.Errorf("json element %d\n%s\nwant the export record\n%s", i, b, w)
		}
	}
	wantIDs("limit=0", getMsgs("limit=0"), ids(all))

	// Filters.
	wantIDs("device", getMsgs("device="+A), filter(func(s *inlet.Stored) bool { return s.Device == A }))
	for i, r := range getMsgs("device=" + A) {
		if r.Payload == nil || *r.Payload != strconv.Itoa(i+1) || r.Transport != "tcp" || r.Boot != nil || r.Seq != nil {
			t.Errorf("device A message %d: %+v", i, r)
		}
	}
	u := getMsgs("device=" + U)
	if len(u) != 2 || u[0].Transport != "udp" || *u[0].Payload != "1" || *u[1].Payload != "2" {
		t.Errorf("UDP device: %+v", u)
	}
	ts := func(x time.Time) string { return url.QueryEscape(x.UTC().Format(time.RFC3339Nano)) }
	wantIDs("until=t1", getMsgs("until="+ts(t1)), filter(func(s *inlet.Stored) bool { return s.ReceivedAt < t1.UnixNano() }))
	wantIDs("since=t1&until=t2", getMsgs("since="+ts(t1)+"&until="+ts(t2)),
		filter(func(s *inlet.Stored) bool { return s.ReceivedAt >= t1.UnixNano() && s.ReceivedAt < t2.UnixNano() }))
	if n := len(getMsgs("until=" + ts(t1))); n != 6 {
		t.Errorf("until=t1: %d messages, want the 6 sent before it", n)
	}
	if n := len(getMsgs("since=" + ts(t1) + "&until=" + ts(t2))); n != 6 {
		t.Errorf("since=t1&until=t2: %d messages, want the 6 sent between", n)
	}
	wantIDs("device+since", getMsgs("device="+A+"&since="+ts(t2)), filter(func(s *inlet.Stored) bool {
		return s.Device == A && s.ReceivedAt >= t2.UnixNano()
	}))
	// since is inclusive, until exclusive: a message's own received_at.
	pivot := all[7]
	at := url.QueryEscape(time.Unix(0, pivot.ReceivedAt).UTC().Format(time.RFC3339Nano))
	if got := getMsgs("since=" + at + "&limit=0"); len(got) == 0 || got[0].ID > pivot.ID || !slices.Contains(msgIDs(got), pivot.ID) {
		t.Errorf("since=its own time does not include message %d", pivot.ID)
	}
	if got := getMsgs("until=" + at + "&limit=0"); slices.Contains(msgIDs(got), pivot.ID) {
		t.Errorf("until=its own time includes message %d", pivot.ID)
	}
	// Other time spellings: duration, unix seconds, date.
	wantIDs("since=1h", getMsgs("since=1h&limit=0"), ids(all))
	wantIDs("since=unix", getMsgs(fmt.Sprintf("since=%d&limit=0", t0.Unix()-1)), ids(all))
	wantIDs("since=tomorrow", getMsgs("since="+time.Now().UTC().Add(48*time.Hour).Format("2006-01-02")), []int64{})
	wantIDs("until=yesterday", getMsgs("until="+time.Now().UTC().Add(-48*time.Hour).Format("2006-01-02")), []int64{})
	wantIDs("unknown device", getMsgs("device=10.9.9.9"), []int64{})

	// Paging walks every message once, in id order.
	var walked []int64
	after, pages := int64(0), 0
	for {
		page := getMsgs(fmt.Sprintf("limit=97&after_id=%d", after))
		pages++
		if len(page) > 97 {
			t.Fatalf("page of %d with limit=97", len(page))
		}
		walked = append(walked, msgIDs(page)...)
		if len(page) < 97 {
			break
		}
		after = page[len(page)-1].ID
		if pages > 100 {
			t.Fatal("paging does not end")
		}
	}
	if !slices.Equal(walked, ids(all)) {
		t.Errorf("paging walked %d ids, want the %d stored, once each, in order", len(walked), len(all))
	}
	walked, after = nil, 0
	for {
		page := getMsgs(fmt.Sprintf("device=%s&limit=4&after_id=%d", A, after))
		walked = append(walked, msgIDs(page)...)
		if len(page) < 4 {
			break
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(walked, filter(func(s *inlet.Stored) bool { return s.Device == A })) {
		t.Errorf("paging device A: %v", walked)
	}

	// last=1: the newest limit messages, still in id order.
	wantIDs("last=1&limit=5", getMsgs("last=1&limit=5"), ids(all[len(all)-5:]))
	lastA := getMsgs("device=" + A + "&limit=3&last=1")
	if len(lastA) != 3 || *lastA[0].Payload != "8" || *lastA[2].Payload != "10" {
		t.Errorf("device A last 3: %+v", lastA)
	}
	wantIDs("last=1 default limit", getMsgs("last=1"), ids(all[len(all)-1000:]))

	// NDJSON: exactly inlet export's output.
	resp, b := get(t, e.base+"/api/messages?format=ndjson")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
		t.Errorf("ndjson: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if string(b) != exportOut {
		t.Errorf("ndjson (%d bytes) differs from inlet export (%d bytes)", len(b), len(exportOut))
	}
	devExport := strings.Join(exportLines(e.stored(inlet.Query{Device: B})), "")
	if _, b := get(t, e.base+"/api/messages?format=ndjson&device="+B); string(b) != devExport {
		t.Errorf("ndjson device B:\n%s\nwant\n%s", b, devExport)
	}
	if _, b := get(t, e.base+"/api/messages?format=ndjson&device=nobody"); len(b) != 0 {
		t.Errorf("ndjson of nothing: %q", b)
	}
	if _, b := get(t, e.base+"/api/messages?format=ndjson&limit=2"); string(b) != strings.Join(lines[:2], "") {
		t.Errorf("ndjson limit=2: %q", b)
	}

	// CSV: header plus rows, as inlet export --format csv.
	resp, b = get(t, e.base+"/api/messages?format=csv")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("csv: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	if len(rows) != total+1 || strings.Join(rows[0], ",") != "id,received_at,device,transport,remote,boot,seq,payload,payload_base64,fields" {
		t.Errorf("csv: %d rows, header %q", len(rows), rows[0])
	}
	if string(b) != exportCSV(all) {
		t.Errorf("csv differs from inlet export --format csv")
	}
	if _, b := get(t, e.base+"/api/messages?format=csv&device=nobody"); strings.TrimSpace(string(b)) != strings.Join(rows[0], ",") {
		t.Errorf("csv of nothing: %q, want the header", b)
	}

	// Bad parameters: 400 with a JSON error naming the parameter.
	for q, what := range map[string]string{
		"since=yesterday":   "since",
		"until=soon":        "until",
		"after_id=-1":       "after_id",
		"after_id=x":        "after_id",
		"limit=-5":          "limit",
		"limit=many":        "limit",
		"format=xml":        "format",
		"last=maybe":        "last",
		"since=2026-13-45":  "since",
		"device=A&since=1x": "since",
	} {
		wantError(t, e.base+"/api/messages?"+q, http.StatusBadRequest, what)
	}
	wantError(t, e.base+"/api/x", http.StatusNotFound, "")
	wantError(t, e.base+"/api/messages/extra", http.StatusNotFound, "")
	resp, b = do(t, http.MethodPost, e.base+"/api/messages", nil, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "GET") || !bytes.Contains(b, []byte(`"error"`)) {
		t.Errorf("POST /api/messages: %s Allow %q %s, want 405 with Allow: GET and a JSON error", resp.Status, resp.Header.Get("Allow"), b)
	}
}

// A client that asks for a big export and stops reading holds no read
// transaction: the WAL stays checkpointable (else it grows without bound).
func TestMessagesStalledExportHoldsNoReadTransaction(t *testing.T) {
	e := newEnv(t)
	pad := strings.Repeat("x", 400)
	var batch []inlet.Message
	for i := range 30000 { // ~14 MB of NDJSON: far more than the socket buffers hold
		batch = append(batch, msg("10.0.0.90", fmt.Sprintf("%d %s", i, pad)))
	}
	e.send(batch...)
	stalledConn(t, e.srv.Listener.Addr().String(), "/api/messages?format=ndjson")
	time.Sleep(300 * time.Millisecond) // the server writes until the buffers are full
	// A TRUNCATE checkpoint reports busy while any reader holds a snapshot.
	// Between chunks the export holds none, so one attempt of a few succeeds.
	var busy int
	ok := false
	for range 20 {
		if busy = checkpoint(t, e.db); busy == 0 {
			ok = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ok {
		t.Errorf("the WAL cannot be checkpointed while an export client stalls (busy=%d): a read transaction stays open", busy)
	}
}

// ---- /api/overview and /metrics --------------------------------------------------

func TestOverviewAndMetrics(t *testing.T) {
	e := newEnv(t)
	before := scrape(t, e.base)
	for _, k := range []string{
		`inlet_messages_received_total{transport="tcp"}`, `inlet_messages_received_total{transport="udp"}`,
		`inlet_messages_committed_total`, `inlet_rejected_total{reason="too_long"}`, `inlet_rejected_total{reason="truncated"}`,
		`inlet_rejected_total{reason="refused"}`, `inlet_rejected_total{reason="queue_full"}`,
		`inlet_batch_size_messages_count`, `inlet_commit_duration_seconds_count`, `inlet_ack_latency_seconds_count`,
		`inlet_connections_open{transport="tcp"}`, `inlet_connections_accepted_total{transport="tcp"}`,
		`inlet_connections_refused_total{transport="tcp"}`, `inlet_store_healthy`, `inlet_stream_subscribers`,
		`inlet_stream_dropped_total`, `inlet_udp_datagrams_total`, `inlet_queue_messages`, `inlet_udp_kernel_drops_total`,
		`inlet_duplicates_total`, `inlet_acked_connections_total`, `inlet_hello_errors_total`, `inlet_seq_errors_total`,
		`inlet_store_errors_total`, `inlet_batches_committed_total`,
	} {
		if _, ok := before[k]; !ok {
			t.Errorf("metric %s missing before any traffic", k)
		}
	}
	if before["inlet_store_healthy"] != 1 {
		t.Errorf("inlet_store_healthy %v", before["inlet_store_healthy"])
	}
	if _, ok := before["go_goroutines"]; !ok {
		t.Errorf("the standard go_* metrics are missing")
	}

	// What the listeners count lands in the shared stats: 7 TCP messages and
	// one too-long line, 5 UDP datagrams, one open connection.
	s := e.stats
	s.MessagesTCP.Add(7)
	s.MessagesUDP.Add(5)
	s.Datagrams.Add(5)
	s.Rejected(inlet.ReasonTooLong).Add(1)
	s.ConnsOpen.Add(1)
	s.ConnsAccepted.Add(3)
	e.send(counterMsgs("10.0.0.101", 1, 7)...)
	var us []inlet.Message
	for i := 1; i <= 5; i++ {
		us = append(us, udp("10.0.0.102", strconv.Itoa(i)))
	}
	e.send(us...)
	mid := scrape(t, e.base)
	delta := func(a, b map[string]float64, k string) float64 { return b[k] - a[k] }
	for k, want := range map[string]float64{
		`inlet_messages_received_total{transport="tcp"}`:    7,
		`inlet_messages_received_total{transport="udp"}`:    5,
		`inlet_udp_datagrams_total`:                         5,
		`inlet_messages_committed_total`:                    12,
		`inlet_rejected_total{reason="too_long"}`:           1,
		`inlet_rejected_total{reason="truncated"}`:          0,
		`inlet_ack_latency_seconds_count`:                   0,
		`inlet_connections_open{transport="tcp"}`:           1,
		`inlet_connections_accepted_total{transport="tcp"}`: 3,
		`inlet_batch_size_messages_sum`:                     12,
	} {
		if got := delta(before, mid, k); got != want {
			t.Errorf("%s rose by %v, want %v", k, got, want)
		}
	}
	for _, k := range []string{`inlet_batch_size_messages_count`, `inlet_commit_duration_seconds_count`, `inlet_batches_committed_total`} {
		if delta(before, mid, k) <= 0 {
			t.Errorf("%s did not increase", k)
		}
	}
	for _, h := range []string{"inlet_batch_size_messages", "inlet_commit_duration_seconds", "inlet_ack_latency_seconds"} {
		if mid[h+`_bucket{le="+Inf"}`] != mid[h+"_count"] {
			t.Errorf("%s: +Inf bucket %v, count %v", h, mid[h+`_bucket{le="+Inf"}`], mid[h+"_count"])
		}
	}
	if delta(before, mid, `inlet_http_requests_total{code="200"}`) < 1 {
		t.Errorf("inlet_http_requests_total{code=\"200\"} did not count the first scrape")
	}
	wantError(t, e.base+"/api/nothing", http.StatusNotFound, "no such endpoint")
	if got := scrape(t, e.base)[`inlet_http_requests_total{code="404"}`]; got != 1 {
		t.Errorf("inlet_http_requests_total{code=\"404\"} = %v after one 404", got)
	}

	// The overview tells the same story.
	var ov struct {
		Now                 string            `json:"now"`
		Started             string            `json:"started"`
		Version             string            `json:"version"`
		Committed           int64             `json:"committed"`
		Received            map[string]int64  `json:"received"`
		ConnectionsOpen     map[string]int64  `json:"connections_open"`
		ConnectionsAccepted map[string]int64  `json:"connections_accepted"`
		Rejected            map[string]int64  `json:"rejected"`
		Devices             int               `json:"devices"`
		Queue               *int64            `json:"queue"`
		Duplicates          *int64            `json:"duplicates"`
		UDPKernelDrops      *int64            `json:"udp_kernel_drops"`
		Listen              map[string]string `json:"listen"`
		Auth                *bool             `json:"auth"`
		Store               struct {
			Healthy bool  `json:"healthy"`
			Errors  int64 `json:"errors"`
		} `json:"store"`
		RateHistory       []int64  `json:"rate_history"`
		MessagesPerSecond *float64 `json:"messages_per_second"`
	}
	getJSON(t, e.base+"/api/overview", &ov)
	if ov.Committed != 12 || ov.Received["tcp"] != 7 || ov.Received["udp"] != 5 || ov.Rejected["too_long"] != 1 ||
		len(ov.Rejected) != len(inlet.Reasons) || ov.Devices != 2 || !ov.Store.Healthy || len(ov.RateHistory) != 60 ||
		!nineDigits.MatchString(ov.Now) || !nineDigits.MatchString(ov.Started) || ov.Version != "test" ||
		ov.ConnectionsOpen["tcp"] != 1 || ov.ConnectionsAccepted["tcp"] != 3 || ov.Listen["tcp"] != "127.0.0.1:3000" ||
		ov.Auth == nil || *ov.Auth || ov.Queue == nil || ov.Duplicates == nil || ov.UDPKernelDrops == nil || ov.MessagesPerSecond == nil {
		t.Errorf("overview %+v", ov)
	}
	var sum int64
	for _, n := range ov.RateHistory {
		sum += n
	}
	if sum > 12 {
		t.Errorf("rate_history counts %d messages of the 12 committed", sum)
	}
	// Within a second or two the committed messages show in the history.
	waitFor(t, "the rate history to count the 12 messages", 5*time.Second, func() bool {
		getJSON(t, e.base+"/api/overview", &ov)
		var sum int64
		for _, n := range ov.RateHistory {
			sum += n
		}
		return sum == 12
	})

	// Acknowledged messages add ack latencies.
	ackers := &countAcks{}
	m := acked("metric-1", "m1", 1, "a=1")
	m.Ack = ackers
	e.send(m)
	waitFor(t, "the ack", 5*time.Second, func() bool { return ackers.n.Load() == 1 })
	if got := delta(mid, scrape(t, e.base), `inlet_ack_latency_seconds_count`); got != 1 {
		t.Errorf("inlet_ack_latency_seconds_count rose by %v, want 1", got)
	}
}

// countAcks is an acknowledged connection's side of the writer: it counts ACKs.
type countAcks struct{ n atomic.Int64 }

func (c *countAcks) Acked(seq int64) { c.n.Add(1) }

// checkpoint runs a TRUNCATE checkpoint on db from a connection of its own and
// returns its busy flag: 1 while any reader holds a snapshot.
func checkpoint(t testing.TB, db string) int {
	t.Helper()
	c, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var busy, logPages, done int
	if err := c.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done); err != nil {
		t.Fatal(err)
	}
	return busy
}

// ---- /api/series -------------------------------------------------------------

type apiSeries struct {
	Device   string                `json:"device"`
	Fields   []string              `json:"fields"`
	T        []float64             `json:"t"`
	Series   map[string][]*float64 `json:"series"`
	Rows     int64                 `json:"rows"`
	Bucketed bool                  `json:"bucketed"`
	LastID   int64                 `json:"last_id"`
	Markers  []struct {
		T       float64 `json:"t"`
		Kind    string  `json:"kind"`
		Missing int64   `json:"missing"`
		From    int64   `json:"from"`
		To      int64   `json:"to"`
		Boot    string  `json:"boot"`
	} `json:"markers"`
}

func (s *apiSeries) check(t testing.TB) {
	t.Helper()
	for _, f := range s.Fields {
		if len(s.Series[f]) != len(s.T) {
			t.Errorf("series %s: %d values for %d times", f, len(s.Series[f]), len(s.T))
		}
	}
	if len(s.Series) != len(s.Fields) {
		t.Errorf("series has %d columns for fields %v", len(s.Series), s.Fields)
	}
	if !slices.IsSorted(s.T) {
		t.Errorf("t not in order: %v", s.T)
	}
}

func vals(c []*float64) []string {
	out := make([]string, len(c))
	for i, v := range c {
		if v == nil {
			out[i] = "null"
		} else {
			out[i] = strconv.FormatFloat(*v, 'g', -1, 64)
		}
	}
	return out
}

func counterStrings(from, to int) []string {
	var out []string
	for n := from; n <= to; n++ {
		out = append(out, strconv.Itoa(n))
	}
	return out
}

func TestSeries(t *testing.T) {
	e := newEnv(t)
	const G, K, P = "10.0.0.81", "10.0.0.82", "10.0.0.83"

	// G: 1..10, a gap of 11..13, 14..30, then a reset to 1, 2.
	e.send(counterMsgs(G, 1, 10)...)
	e.send(counterMsgs(G, 14, 30)...)
	e.send(counterMsgs(G, 1, 2)...)
	// K: key=value readings with fields coming and going; a string field is skipped.
	e.send(msg(K, "temp=21.5;hum=40"), msg(K, "temp=22;room=lab"), msg(K, "hum=41"))

	var s apiSeries
	getJSON(t, e.base+"/api/series?device="+G, &s)
	s.check(t)
	gm := e.stored(inlet.Query{Device: G})
	if s.Device != G || fmt.Sprint(s.Fields) != "[value]" || s.Rows != 29 || len(s.T) != 29 || s.Bucketed {
		t.Fatalf("series G: device %s fields %v rows %d len(t) %d bucketed %v", s.Device, s.Fields, s.Rows, len(s.T), s.Bucketed)
	}
	want := append(append(counterStrings(1, 10), counterStrings(14, 30)...), counterStrings(1, 2)...)
	if got := vals(s.Series["value"]); !slices.Equal(got, want) {
		t.Errorf("values %v, want %v", got, want)
	}
	// Without until, last_id is the newest id stored (of any device) when the
	// series was read.
	if all := e.stored(inlet.Query{}); s.LastID != all[len(all)-1].ID {
		t.Errorf("last_id %d, want the store's newest id %d", s.LastID, all[len(all)-1].ID)
	}
	for i, x := range s.T {
		if d := x - float64(gm[i].ReceivedAt)/1e9; d > 0.001 || d < -0.001 {
			t.Errorf("t[%d] = %v, received_at %d", i, x, gm[i].ReceivedAt)
			break
		}
	}
	var sawGap, sawReset bool
	for _, mk := range s.Markers {
		switch mk.Kind {
		case "gap":
			sawGap = true
			if mk.From != 11 || mk.To != 13 || mk.Missing != 3 || mk.T != s.T[10] {
				t.Errorf("gap marker %+v, want 11-13, missing 3, at t %v (the message after)", mk, s.T[10])
			}
		case "reset":
			sawReset = true
			if mk.T != s.T[27] {
				t.Errorf("reset marker %+v, want at t %v", mk, s.T[27])
			}
		default:
			t.Errorf("unexpected marker %+v", mk)
		}
	}
	if !sawGap || !sawReset {
		t.Errorf("markers %+v, want a gap and a reset", s.Markers)
	}

	// Fields in order first seen, nulls where absent, strings skipped.
	var k apiSeries
	getJSON(t, e.base+"/api/series?device="+K, &k)
	k.check(t)
	if fmt.Sprint(k.Fields) != "[temp hum]" || fmt.Sprint(vals(k.Series["temp"])) != "[21.5 22 null]" ||
		fmt.Sprint(vals(k.Series["hum"])) != "[40 null 41]" || len(k.Markers) != 0 {
		t.Errorf("series K: fields %v temp %v hum %v markers %v", k.Fields, vals(k.Series["temp"]), vals(k.Series["hum"]), k.Markers)
	}

	// An acknowledged device: a missing seq range is a gap marker.
	e.send(acked("probe-9", "x1", 1, "t=1"), acked("probe-9", "x1", 2, "t=2"), acked("probe-9", "x1", 3, "t=3"),
		acked("probe-9", "x1", 6, "t=6"), acked("probe-9", "x1", 7, "t=7"))
	var p apiSeries
	getJSON(t, e.base+"/api/series?device=probe-9", &p)
	p.check(t)
	if len(p.Markers) != 1 || p.Markers[0].Kind != "gap" || p.Markers[0].From != 4 || p.Markers[0].To != 5 ||
		p.Markers[0].Missing != 2 || p.Markers[0].Boot != "x1" || len(p.T) != 5 || p.Markers[0].T != p.T[3] {
		t.Errorf("acknowledged series: t %v markers %+v, want a gap 4-5 of boot x1 at the time of seq 6", p.T, p.Markers)
	}

	// Bucketing: 300 rows into at most 50 points.
	for i := 1; i <= 300; i += 30 {
		e.send(counterMsgs(P, i, i+29)...)
		time.Sleep(2 * time.Millisecond) // spread them over time
	}
	pm := e.stored(inlet.Query{Device: P})
	var bk apiSeries
	getJSON(t, e.base+"/api/series?device="+P+"&points=50", &bk)
	bk.check(t)
	if !bk.Bucketed || len(bk.T) > 50 || len(bk.T) == 0 || bk.Rows != 300 || bk.LastID != pm[len(pm)-1].ID {
		t.Errorf("bucketed series: bucketed %v, %d points, rows %d, last_id %d (want true, ≤50, 300, %d)",
			bk.Bucketed, len(bk.T), bk.Rows, bk.LastID, pm[len(pm)-1].ID)
	}
	// Means of an increasing counter over successive time buckets increase.
	v := bk.Series["value"]
	for i := range v {
		if v[i] == nil || *v[i] < 1 || *v[i] > 300 || (i > 0 && v[i-1] != nil && *v[i] <= *v[i-1]) {
			t.Errorf("bucket means not increasing within 1..300: %v", vals(v))
			break
		}
	}
	if len(bk.Markers) != 0 {
		t.Errorf("markers on a clean counter: %+v", bk.Markers)
	}
	var raw apiSeries
	getJSON(t, e.base+"/api/series?device="+P+"&points=300", &raw)
	if raw.Bucketed || len(raw.T) != 300 {
		t.Errorf("points=300 for 300 rows: bucketed %v, %d points", raw.Bucketed, len(raw.T))
	}
	// since/until select the rows; with until, last_id is the newest in the range.
	mid := time.Unix(0, pm[150].ReceivedAt).UTC().Format(time.RFC3339Nano)
	var half apiSeries
	getJSON(t, e.base+"/api/series?device="+P+"&points=1000&since="+url.QueryEscape(mid), &half)
	var wantRows int64
	var firstVal float64
	for _, x := range pm {
		if x.ReceivedAt >= pm[150].ReceivedAt {
			if wantRows == 0 {
				firstVal, _ = strconv.ParseFloat(string(x.Payload), 64)
			}
			wantRows++
		}
	}
	if half.Rows != wantRows || int64(len(half.T)) != wantRows || half.Series["value"][0] == nil || *half.Series["value"][0] != firstVal {
		t.Errorf("since=%s: rows %d, want %d", mid, half.Rows, wantRows)
	}
	var before apiSeries
	getJSON(t, e.base+"/api/series?device="+P+"&until="+url.QueryEscape(mid), &before)
	var wantLast int64
	for _, x := range pm {
		if x.ReceivedAt < pm[150].ReceivedAt {
			wantLast = x.ID
		}
	}
	if before.Rows != 300-wantRows || before.LastID != wantLast {
		t.Errorf("until=%s: rows %d last_id %d, want %d rows and last_id %d (the newest in the range)", mid, before.Rows, before.LastID, 300-wantRows, wantLast)
	}
	// A device with nothing stored: an empty series, and last_id still the newest.
	var none apiSeries
	getJSON(t, e.base+"/api/series?device=nobody", &none)
	if none.Rows != 0 || len(none.T) != 0 || none.LastID != pm[len(pm)-1].ID {
		t.Errorf("empty series %+v", none)
	}

	wantError(t, e.base+"/api/series", http.StatusBadRequest, "device")
	wantError(t, e.base+"/api/series?device="+P+"&points=0", http.StatusBadRequest, "points")
	wantError(t, e.base+"/api/series?device="+P+"&points=20001", http.StatusBadRequest, "points")
	wantError(t, e.base+"/api/series?device="+P+"&since=later", http.StatusBadRequest, "since")
}
