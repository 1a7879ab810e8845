package httpapi

import (
	"strconv"
	"strings"
	"testing"
)

func ev(id int64, device string) event {
	return event{id: id, device: device, data: []byte("id: " + strconv.FormatInt(id, 10) + "\ndata: {}\n\n")}
}

// The ring keeps every event after its base in id order, grows while small,
// drops its oldest beyond its bounds, and tells a stream behind it so.
func TestRing(t *testing.T) {
	r := &ring{maxRows: 8, maxBytes: 1 << 20, evs: make([]event, 2), more: make(chan struct{}), ready: true, base: 10, last: 10}
	ids := func(b []byte) string {
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if id, ok := strings.CutPrefix(l, "id: "); ok {
				out = append(out, id)
			}
		}
		return strings.Join(out, ",")
	}
	if _, _, wait, _, err := r.next(10, "", nil); wait == nil || err != nil {
		t.Fatalf("an empty ring: wait %v err %v, want a channel to wait on", wait, err)
	}
	wait := r.more
	r.publish([]event{ev(11, "a"), ev(12, "b"), ev(14, "a")}) // ids need not be contiguous
	select {
	case <-wait:
	default:
		t.Fatal("publish did not wake the streams")
	}
	if out, upTo, _, _, err := r.next(10, "", nil); ids(out) != "11,12,14" || upTo != 14 || err != nil {
		t.Errorf("all after 10: %s up to %d (%v)", ids(out), upTo, err)
	}
	if out, upTo, _, _, _ := r.next(11, "a", nil); ids(out) != "14" || upTo != 14 {
		t.Errorf("device a after 11: %s up to %d", ids(out), upTo)
	}
	if out, upTo, w, _, _ := r.next(14, "b", nil); len(out) != 0 || upTo != 14 || w == nil {
		t.Errorf("device b after 14: %s up to %d, wait %v: want nothing and a wait", ids(out), upTo, w)
	}
	if out, upTo, w, _, _ := r.next(12, "b", nil); len(out) != 0 || upTo != 14 || w != nil {
		t.Errorf("device b after 12: %s up to %d, wait %v: want nothing, looked up to 14, no wait", ids(out), upTo, w)
	}
	if out, _, w, _, _ := r.next(100, "", nil); len(out) != 0 || w == nil {
		t.Errorf("after an id not stored yet: %s, wait %v", ids(out), w)
	}
	// Beyond 8 events the oldest go, and the base follows.
	var more []event
	for id := int64(15); id <= 22; id++ {
		more = append(more, ev(id, "a"))
	}
	r.publish(more)
	if r.n != 8 || len(r.evs) != 8 || r.base != 14 || r.last != 22 {
		t.Errorf("ring of %d in %d, base %d last %d: want 8 in 8, base 14, last 22", r.n, len(r.evs), r.base, r.last)
	}
	if _, _, _, base, err := r.next(12, "", nil); err != errBehind || base != 14 {
		t.Errorf("after 12 once 14 has gone: %v base %d, want errBehind from 14", err, base)
	}
	if out, _, _, _, err := r.next(14, "", nil); ids(out) != "15,16,17,18,19,20,21,22" || err != nil {
		t.Errorf("after the base: %s (%v)", ids(out), err)
	}
	// The byte bound.
	r.maxBytes = 3 * len(ev(30, "a").data)
	r.publish([]event{ev(30, "a"), ev(31, "a"), ev(32, "a"), ev(33, "a")})
	if out, _, _, _, _ := r.next(r.base, "", nil); ids(out) != "31,32,33" || r.base != 30 {
		t.Errorf("with room for 3 events: %s from base %d", ids(out), r.base)
	}
}
