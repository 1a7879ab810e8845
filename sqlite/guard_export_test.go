package sqlite

// CheckGuard runs the guard's checks as Commit does around one commit (before
// COMMIT and after it), for BenchmarkCommitGuard.
func CheckGuard(s *Store) error {
	if err := s.g.check(); err != nil {
		return err
	}
	return s.g.check()
}
