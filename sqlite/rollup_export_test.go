package sqlite

// SetRollups turns the writer's rollups on or off, for benchmarks that compare
// the commit cost with and without them.
func SetRollups(s *Store, on bool) { s.ws.ru.off = !on }
