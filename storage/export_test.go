package storage

// SetJoinPage sets how many predictions a page of the label join holds, so that a test
// reads a window in several pages without writing a quarter of a million keys.
func (s *Store) SetJoinPage(n int) { s.joinPage = n }
