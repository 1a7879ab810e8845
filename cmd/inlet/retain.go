package main

import (
	"context"
	"time"

	"github.com/inletdev/inlet/record"
)

// retainEvery is how often serve --retain prunes (more often for a retention
// shorter than 20 minutes: twice per period); the first prune runs a few seconds
// after start.
const retainEvery = 10 * time.Minute

// startRetention prunes messages older than m.Config.Retain now and then, off the
// commit path (both stores' Prune delete in small transactions). It returns a
// function that stops it and waits for a prune under way to end.
func (m *Main) startRetention() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := min(retainEvery, m.Config.Retain/2)
		wait := min(5*time.Second, every)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = every
			before := time.Now().Add(-m.Config.Retain).UnixNano()
			start := time.Now()
			n, err := m.store.Prune(ctx, before)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				m.Logger.Error("retention: prune failed; trying again later", "err", err)
			case n > 0:
				m.Logger.Info("retention: deleted old messages", "deleted", n, "before", record.Time(before),
					"took", time.Since(start).Round(time.Millisecond))
			}
		}
	}()
	return func() { cancel(); <-done }
}
