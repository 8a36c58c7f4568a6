package points

import (
	"fmt"
	"strconv"
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
		{"m,host=a,host=b v=1", false},
		{"m,host=a,b=1,a=2 x=-0.125,y=F,z=-12i 1699786600000000002", true},
		{"m v=1 -1699786600", true},
		{"m v=1 - ", false},
		{"m v=1 -  ", false},
		{"m v=1 00000000001699786600000000002", false}, // 31 digits: the Decoder reads it
		{"m v=1 1700009999000000000", false},           // past MaxFuture
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

// TestEightDigits checks the word-at-a-time reading of eight digits
// against strconv, on digits and on words with one byte that is not one.
func TestEightDigits(t *testing.T) {
	for _, n := range []uint64{0, 1, 9, 10, 12345678, 87654321, 99999999, 10000000, 90909090} {
		b := []byte(fmt.Sprintf("%08d", n))
		if got, ok := eightDigits(b); !ok || got != n {
			t.Errorf("%s: got %d, %v; want %d", b, got, ok, n)
		}
		for i := range b {
			for _, c := range []byte{'/', ':', ' ', '-', 0, 0x80, 0xff, 'a', '0' + 0x10, '9' - 0x10} {
				bad := []byte(string(b))
				bad[i] = c
				if _, err := strconv.ParseUint(string(bad), 10, 64); err == nil {
					continue
				}
				if got, ok := eightDigits(bad); ok {
					t.Errorf("%q: read as %d; want refused", bad, got)
				}
			}
		}
	}
}
