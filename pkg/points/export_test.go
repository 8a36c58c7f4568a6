package points

// SetDecoderOnly turns the Scanner's fast path off (or on again), so that
// the tests and benchmarks of package points_test can compare the fast
// path with the Decoder-based path it stands in for.
func (s *Scanner) SetDecoderOnly(on bool) { s.decoderOnly = on }
