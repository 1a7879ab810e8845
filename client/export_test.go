package client

import "path/filepath"

// Crash stops s as a killed process would: delivery ends, the files are closed
// without a final sync, and nothing else happens.
func Crash(s *Sender) {
	s.ob.setClosed()
	s.cancel()
	<-s.stopped
	s.ob.syncMu.Lock()
	s.ob.mu.Lock()
	s.ob.closeFiles()
	s.ob.mu.Unlock()
	s.ob.syncMu.Unlock()
}

// SetCompactMin sets the size of acknowledged records that makes the outbox
// compact itself (default 1 MiB).
func SetCompactMin(s *Sender, n int64) {
	s.ob.mu.Lock()
	s.ob.compactMin = n
	s.ob.mu.Unlock()
}

// OutboxFile is the log inside an outbox directory.
func OutboxFile(dir string) string { return filepath.Join(dir, outboxName) }
