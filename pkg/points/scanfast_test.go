package points

import (
	"testing"
	"time"
)

// TestFastLineTakes checks that the fast path takes the lines it is for,
// and leaves others to the Decoder: the differential tests would pass with
// a fast path that took nothing, and the gateway would be as slow as
// before.
func TestFastLineTakes(t *testing.T) {
	var s Scanner
	s.opts = Options{HostTag: "host", Limits: Limits{MaxFuture: time.Hour}}
	s.lim, s.precision, s.now = s.opts.Limits.withDefaults(), time.Nanosecond, time.Unix(1700000000, 0)
	s.hostTok = appendTag(nil, "host", "h")
	for _, c := range []struct {
		line string
		take bool
	}{
		{"cpu,host=web-1,cpu=cpu1,region=eu-west usage_user=1.5,usage_idle=84.125 1699786600000000002", true},
		{"disk,z=1,a=2 free=1i,up=t,n=5u,s=\"ok go\" 1699786600000000002\r", true},
		{"m v=1", true},
		{"m   v=1   1   ", true},
		{"m,t=a\\ b v=1", false},
		{"m s=\"a\\\"b\"", false},
		{"m v=1.50", false},
		{"# m v=1", false},
		{" m v=1", false},
		{"m,a=1,a=2 v=1", false},
		{"m v=1 1700009999000000000", false}, // past MaxFuture
	} {
		s.body = []byte(c.line)
		s.lines.Reset()
		s.cursor = lineCursor{line: 1}
		if took, err := s.fastLine(s.body); took != c.take || err != nil {
			t.Errorf("%q: fastLine took it: %v (%v); want %v", c.line, took, err, c.take)
		}
		if !c.take && len(s.lines.Data) != 0 {
			t.Errorf("%q: fastLine left %q behind", c.line, s.lines.Data)
		}
	}
}
