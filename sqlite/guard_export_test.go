package sqlite

// CheckGuard runs the guard's checks as Commit does around one commit (before
// and after), for BenchmarkCommitGuard.
func CheckGuard(s *Store) error {
	if err := s.g.recheck(); err != nil {
		return err
	}
	return s.g.check()
}
