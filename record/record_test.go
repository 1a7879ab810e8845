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
