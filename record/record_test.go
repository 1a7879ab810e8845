package record

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/inletdev/inlet"
)

func TestAppendJSON(t *testing.T) {
	m := &inlet.Stored{ID: 7, Message: inlet.Message{
		ReceivedAt: time.Date(2026, 11, 29, 10, 0, 7, 5, time.UTC).UnixNano(),
		Device:     "192.168.1.37", Transport: inlet.TCP,
		Remote:  netip.MustParseAddrPort("192.168.1.37:50412"),
		Payload: []byte("7"), Fields: []byte(`{"value":7}`),
	}}
	want := `{"id":7,"received_at":"2026-11-29T10:00:07.000000005Z","device":"192.168.1.37","transport":"tcp",` +
		`"remote":"192.168.1.37:50412","boot":null,"seq":null,"payload":"7","fields":{"value":7}}`
	if got := string(AppendJSON(nil, m)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	// Not UTF-8: base64; acknowledged: boot and seq.
	m.Payload, m.Fields, m.Boot, m.Seq = []byte{0xff, 0x00}, nil, "7f3a", 3
	var r map[string]any
	if err := json.Unmarshal(AppendJSON(nil, m), &r); err != nil {
		t.Fatal(err)
	}
	if r["payload_base64"] != "/wA=" || r["payload"] != nil || r["boot"] != "7f3a" || r["seq"] != 3.0 {
		t.Errorf("record %v", r)
	}

	// Broken fields text (a hand-edited database) is left out, not a crash.
	m.Payload, m.Fields = []byte("x"), []byte(`{"value":`)
	if err := json.Unmarshal(AppendJSON(nil, m), &r); err != nil {
		t.Fatalf("invalid JSON written: %v", err)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-11-29T08:00:00Z": time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC),
		"2026-11-29":           time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC),
		"1795939200":           time.Unix(1795939200, 0),
		"15m":                  now.Add(-15 * time.Minute),
		"-2h":                  now.Add(-2 * time.Hour),
	} {
		got, err := ParseTime(in, now)
		if err != nil || got != want.UnixNano() {
			t.Errorf("ParseTime(%q) = %d, %v; want %d", in, got, err, want.UnixNano())
		}
	}
	for _, bad := range []string{"yesterday", "0s", "2026-13-01", "9999-12-31T23:59:59Z", "99999999999"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q): no error", bad)
		}
	}
	if got, err := ParseTime(" ", now); got != 0 || err != nil {
		t.Errorf("blank: %d %v", got, err)
	}
}

func TestNewDeviceKinds(t *testing.T) {
	counter := &inlet.Device{ID: "c"}
	for v := int64(1); v <= 12; v++ {
		if v == 5 {
			continue // one lost
		}
		counter.Observe(&inlet.Message{ReceivedAt: v, Counter: v, IsCounter: true})
	}
	sensor := &inlet.Device{ID: "s"}
	for _, v := range []int64{512, 509, 515, 512, 511, 530, 498, 512, 512, 507, 520, 512} {
		sensor.Observe(&inlet.Message{ReceivedAt: 1, Counter: v, IsCounter: true})
	}
	acked := &inlet.Device{ID: "a", LastBoot: "b1", Gaps: 1, Missing: 2}
	for _, c := range []struct {
		d     *inlet.Device
		want  string
		clean bool
	}{
		{counter, `"kind":"counter","messages":11,"first_seen":"1970-01-01T00:00:00.000000001Z","last_seen":"1970-01-01T00:00:00.000000012Z","last_counter":12,"gaps":1,"missing":1,"duplicates":0,"resets":0`, false},
		{sensor, `"kind":"values","messages":12,"first_seen":"1970-01-01T00:00:00.000000001Z","last_seen":"1970-01-01T00:00:00.000000001Z","last_counter":520,"gaps":null,"missing":null,"duplicates":null,"resets":null`, true},
		{acked, `"kind":"acked","messages":0,"first_seen":"1970-01-01T00:00:00.000000000Z","last_seen":"1970-01-01T00:00:00.000000000Z","last_counter":null,"gaps":1,"missing":2,"duplicates":0,"resets":0`, false},
	} {
		r := NewDevice(c.d)
		b, _ := json.Marshal(r)
		if want := `{"device":"` + c.d.ID + `",` + c.want + `}`; string(b) != want {
			t.Errorf("%s:\n got %s\nwant %s", c.d.ID, b, want)
		}
		if r.Clean() != c.clean || r.LossKnown() == (c.d == sensor) {
			t.Errorf("%s: clean %v, loss known %v", c.d.ID, r.Clean(), r.LossKnown())
		}
	}
}

func TestLocalTime(t *testing.T) {
	ns := time.Date(2026, 11, 29, 22, 5, 7, 123456789, time.Local).UnixNano()
	if got := LocalTime(ns); got != "2026-11-29 22:05:07" {
		t.Errorf("LocalTime = %q, want 24-hour local time to the second", got)
	}
}

func TestCSVCellNeutralisesFormulas(t *testing.T) {
	for in, want := range map[string]string{
		"=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0",
		"+1+1":               "'+1+1",
		"-1+1":               "'-1+1",
		"@SUM(1)":            "'@SUM(1)",
		"\t=1":               "'\t=1",
		"\r=1":               "'\r=1",
		"-5":                 "-5",
		"+21.5":              "+21.5",
		"-1e3":               "-1e3",
		"-Inf":               "'-Inf",
		"41":                 "41",
		"temp=21.5":          "temp=21.5",
		"":                   "",
	} {
		if got := CSVCell(in); got != want {
			t.Errorf("CSVCell(%q) = %q, want %q", in, got, want)
		}
	}
	m := &inlet.Stored{Message: inlet.Message{Device: "-2+3", Payload: []byte("=HYPERLINK(\"http://x\")")}}
	rec := CSV(m)
	if rec[2] != "'-2+3" || rec[7] != "'=HYPERLINK(\"http://x\")" {
		t.Fatalf("CSV record: device %q, payload %q", rec[2], rec[7])
	}
}
