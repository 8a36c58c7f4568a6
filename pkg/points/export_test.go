package points

import "time"

// SetDecoderOnly turns the Scanner's fast path off (or on again), so that
// the tests and benchmarks of package points_test can compare the fast
// path with the Decoder-based path it stands in for.
func (s *Scanner) SetDecoderOnly(on bool) { s.decoderOnly = on }

// Plain reports whether a JSONScanner's Scan of body would take its
// plain-object path, so that tests can tell the path a body took.
func (j *JSONScanner) Plain(body string, opts Options, host string, now time.Time) bool {
	j.lines.Reset()
	return j.plain([]byte(body), &opts, host, now)
}
