package listen

// Holding is the number of connections holding lines they have read until the
// queue has room, or until an earlier connection from their address has queued.
func (t *TCP) Holding() int64 { return t.holding.Load() }
