package inlet

import (
	"context"
	"slices"
)

// BootKey names one acknowledged-mode sequence: a device and one of its boots.
type BootKey struct{ Device, Boot string }

// Ledger is the accounting state a batch is counted against: devices by id and
// sequences by (device, boot). The commit writer keeps one in memory; a store
// shared by several writers builds one from its rows inside the batch's
// transaction (AccountingStore).
type Ledger struct {
	Devices map[string]*Device
	Boots   map[BootKey]*Boot
}

// Account is the loss accounting of one batch: it updates l with msgs, in
// order, and returns the batch to store (msgs without the duplicates, in msgs'
// array, whose tail it clears) with a copy of the state of every device and
// sequence the batch touched, and the number of duplicates left out. Every
// sequence msgs continue that has stored state must be in l.Boots: one that is
// not is taken as new.
func (l *Ledger) Account(msgs []Message) (b *Batch, duplicates int) {
	touched := make(map[string]*Device)
	var touchedBoots map[BootKey]*Boot
	stored := msgs[:0] // duplicates are acknowledged but not stored again
	for i := range msgs {
		m := &msgs[i]
		d := l.Devices[m.Device]
		if d == nil {
			d = &Device{ID: m.Device}
			l.Devices[m.Device] = d
		}
		touched[m.Device] = d
		if m.Seq != 0 {
			k := BootKey{m.Device, m.Boot}
			bt := l.Boots[k]
			if bt == nil {
				bt = &Boot{Device: m.Device, Boot: m.Boot}
				l.Boots[k] = bt
				if d.LastBoot != "" && d.LastBoot != m.Boot {
					d.Resets++ // a new sequence: the device restarted
				}
				d.LastBoot = m.Boot
			}
			if touchedBoots == nil {
				touchedBoots = make(map[BootKey]*Boot)
			}
			touchedBoots[k] = bt
			dup, gaps, missing := bt.Observe(m.Seq, m.ReceivedAt)
			if dup {
				d.Duplicates++
				duplicates++
				continue
			}
			d.Gaps += gaps
			d.Missing += missing
		}
		d.Observe(m)
		stored = append(stored, *m)
	}
	clear(msgs[len(stored):])
	b = &Batch{Messages: stored, Devices: make([]Device, 0, len(touched))}
	for _, d := range touched {
		b.Devices = append(b.Devices, *d)
	}
	for _, bt := range touchedBoots {
		c := *bt
		c.Missing = slices.Clone(bt.Missing)
		b.Boots = append(b.Boots, c)
	}
	return b, duplicates
}

// AccountingStore is a Store that several writers (server nodes) share, so
// that the state one writer holds in memory may be stale: the store counts each
// batch itself, inside the batch's transaction, against the state it holds
// then (docs/scale.md). The commit writer uses CommitAccounted instead of
// Commit when its store has it.
type AccountingStore interface {
	Store
	// CommitAccounted accounts for msgs (Ledger.Account) against the stored
	// state and commits the result in one transaction, returning the batch as
	// committed and the number of duplicates left out. l is the writer's
	// state: the store may use it for the devices no other writer has changed
	// since the store last committed them, and on success updates it with the
	// committed state of every device and sequence the batch touched; on error
	// l is as it was. msgs is not modified; the batch is valid until the next
	// call.
	CommitAccounted(ctx context.Context, l *Ledger, msgs []Message) (*Batch, int, error)
}
