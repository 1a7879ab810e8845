package main

import (
	"context"
	"time"

	"github.com/inletdev/inlet/record"
	"github.com/inletdev/inlet/sqlite"
)

// retainEvery is how often serve --retain prunes (more often for a retention
// shorter than 20 minutes: twice per period); the first prune runs a few seconds
// after start.
const retainEvery = 10 * time.Minute

// startRetention prunes messages older than m.Config.Retain now and then, off the
// commit path (sqlite's Prune deletes in small transactions). It returns a
// function that stops it and waits for a prune under way to end.
func (m *Main) startRetention() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := retainEvery
		for _, r := range []time.Duration{m.Config.Retain, m.Config.RetainRollups} {
			if r > 0 {
				every = min(every, r/2)
			}
		}
		wait := min(5*time.Second, every)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = every
			if m.Config.Retain > 0 {
				m.pruneMessages(ctx)
			}
			if m.Config.RetainRollups > 0 {
				before := time.Now().Add(-m.Config.RetainRollups).UnixNano()
				n, err := m.store.PruneRollups(ctx, before)
				switch {
				case ctx.Err() != nil:
					return
				case err != nil:
					m.Logger.Error("retention: prune rollups failed; trying again later", "err", err)
				case n > 0:
					m.Logger.Info("retention: deleted old rollups", "deleted", n, "before", record.Time(before))
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// pruneMessages deletes the messages older than --retain.
func (m *Main) pruneMessages(ctx context.Context) {
	before := time.Now().Add(-m.Config.Retain).UnixNano()
	start := time.Now()
	n, err := m.store.Prune(ctx, before, sqlite.PruneOptions{})
	switch {
	case ctx.Err() != nil:
	case err != nil:
		m.Logger.Error("retention: prune failed; trying again later", "err", err)
	case n > 0:
		m.Logger.Info("retention: deleted old messages", "deleted", n, "before", record.Time(before),
			"took", time.Since(start).Round(time.Millisecond))
	}
}
