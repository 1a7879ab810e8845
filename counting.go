package inlet

import (
	"fmt"
	"strconv"
	"strings"
)

// AppendCounting appends the stored form of a plain device's counter
// recognition (the devices.counting column of both stores, docs/schema.md):
// the evidence, then its raw, confirmed, suspect and pending loss (gaps,
// missing, duplicates, resets each), 17 integers separated by spaces.
func (d *Device) AppendCounting(b []byte) []byte {
	b = strconv.AppendInt(b, d.Evidence.Pack(), 10)
	for _, l := range [...]Loss{{Gaps: d.Gaps, Missing: d.Missing, Duplicates: d.Duplicates, Resets: d.Resets}, d.Loss, d.Suspect, d.Pending} {
		for _, v := range [...]int64{l.Gaps, l.Missing, l.Duplicates, l.Resets} {
			b = append(b, ' ')
			b = strconv.AppendInt(b, v, 10)
		}
	}
	return b
}

// ParseCounting sets d's counter recognition from its stored form
// (AppendCounting's).
func (d *Device) ParseCounting(s string) error {
	f := strings.Fields(s)
	if len(f) != 17 {
		return fmt.Errorf("%d numbers, want 17", len(f))
	}
	var v [17]int64
	for i := range f {
		var err error
		if v[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
			return err
		}
	}
	d.Evidence = UnpackEvidence(v[0])
	d.Gaps, d.Missing, d.Duplicates, d.Resets = v[1], v[2], v[3], v[4]
	d.Loss = Loss{Gaps: v[5], Missing: v[6], Duplicates: v[7], Resets: v[8]}
	d.Suspect = Loss{Gaps: v[9], Missing: v[10], Duplicates: v[11], Resets: v[12]}
	d.Pending = Loss{Gaps: v[13], Missing: v[14], Duplicates: v[15], Resets: v[16]}
	return nil
}
