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
