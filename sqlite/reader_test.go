package sqlite_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/inletdev/inlet"
)

// LastID, Latest and Query.Last: what the HTTP API and inlet tail read.
func TestReaderQueries(t *testing.T) {
	s, _ := MustOpen(t)
	ctx := context.Background()
	if id, err := s.LastID(ctx); id != 0 || err != nil {
		t.Fatalf("empty LastID = %d, %v", id, err)
	}
	for i := range 3 {
		b := batch(i*10, 10, 3, int64(i+1)*1e9) // payloads 0..29 over devices 127.0.0.0-2
		for d := range 3 {
			b.Devices = append(b.Devices, inlet.Device{ID: fmt.Sprintf("127.0.0.%d", d), Messages: 1})
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if id, err := s.LastID(ctx); id != 30 || err != nil {
		t.Fatalf("LastID = %d, %v; want 30", id, err)
	}

	latest, err := s.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range latest {
		got[m.Device] = string(m.Payload)
	}
	want := map[string]string{"127.0.0.0": "27", "127.0.0.1": "28", "127.0.0.2": "29"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Latest = %v, want %v", got, want)
	}

	var ids []int64
	var payloads []string
	err = s.Messages(ctx, inlet.Query{Device: "127.0.0.1", Limit: 3, Last: true}, func(m *inlet.Stored) error {
		ids = append(ids, m.ID)
		payloads = append(payloads, string(m.Payload))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(payloads) != "[22 25 28]" || ids[0] >= ids[1] || ids[1] >= ids[2] {
		t.Errorf("newest 3 of 127.0.0.1: payloads %v ids %v; want [22 25 28] in id order", payloads, ids)
	}
}

// RecentBoots keeps each device's newest boots and counts them all;
// DeviceBoots lists one device's.
func TestRecentBoots(t *testing.T) {
	s, _ := MustOpen(t)
	ctx := context.Background()
	b := &inlet.Batch{}
	for i := range 15 {
		b.Boots = append(b.Boots, inlet.Boot{Device: "sleepy", Boot: fmt.Sprintf("b%02d", i), Last: 1, Messages: 1,
			FirstSeen: int64(i), LastSeen: int64(i)})
	}
	b.Boots = append(b.Boots, inlet.Boot{Device: "awake", Boot: "x", Last: 9, Messages: 9,
		Missing: []inlet.SeqRange{{From: 3, To: 4}}, FirstSeen: 1, LastSeen: 2})
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	boots, totals, err := s.RecentBoots(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var sleepy []string
	for _, bt := range boots {
		if bt.Device == "sleepy" {
			sleepy = append(sleepy, bt.Boot)
		}
	}
	if fmt.Sprint(sleepy) != "[b05 b06 b07 b08 b09 b10 b11 b12 b13 b14]" || totals["sleepy"] != 15 || totals["awake"] != 1 {
		t.Errorf("recent boots %v, totals %v", sleepy, totals)
	}
	one, err := s.DeviceBoots(ctx, "awake")
	if err != nil || len(one) != 1 || len(one[0].Missing) != 1 || one[0].Missing[0] != (inlet.SeqRange{From: 3, To: 4}) {
		t.Errorf("DeviceBoots(awake) = %+v, %v", one, err)
	}
	if b, ok, err := s.Boot(ctx, "awake", "x"); !ok || err != nil || b.Last != 9 || len(b.Missing) != 1 {
		t.Errorf("Boot(awake, x) = %+v, %v, %v", b, ok, err)
	}
	if _, ok, err := s.Boot(ctx, "awake", "nope"); ok || err != nil {
		t.Errorf("Boot(awake, nope) found: %v %v", ok, err)
	}
	if all, _ := s.Boots(ctx); len(all) != 16 {
		t.Errorf("Boots: %d, want 16", len(all))
	}
}
