package postgres

// SetAfterCommit makes every successful COMMIT report f's error, as a COMMIT
// whose answer was lost does.
func SetAfterCommit(s *Store, f func() error) { s.afterCommit = f }
