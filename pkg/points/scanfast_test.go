package points

import (
	"fmt"
	"strconv"
	"strings"
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

// TestDigitsEnd checks the word-at-a-time digitsEnd against a byte-at-a-
// time loop: every byte value at every place of a run of digits, runs
// ending at each length around the eight-byte steps, and starts past 0.
func TestDigitsEnd(t *testing.T) {
	byByte := func(b []byte, i int) int {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i
	}
	digits := []byte("12345678901234567890")
	for n := 0; n <= len(digits); n++ {
		for at := 0; at < n; at++ {
			for c := 0; c < 256; c++ {
				b := []byte(string(digits[:n]))
				b[at] = byte(c)
				for _, start := range []int{0, 1} {
					if start > len(b) {
						continue
					}
					if got, want := digitsEnd(b, start), byByte(b, start); got != want {
						t.Fatalf("digitsEnd(%q, %d) = %d; want %d", b, start, got, want)
					}
				}
			}
		}
	}
}

// TestKnownLineTakes checks that a line whose series an earlier line of
// the body had is written from what that line left (knownLine) when its
// fields are that line's, and only then: the differential tests would
// pass if every line went the whole way through fastLine.
func TestKnownLineTakes(t *testing.T) {
	var s Scanner
	opts := Options{HostTag: "host", Limits: Limits{MaxFuture: time.Hour}}
	now := time.Unix(1699786600, 0)
	first := "cpu,host=web-1,cpu=cpu1 usage=1.5,n=3i,up=t,s=\"a b\" 1699786600000000001\n"
	if _, err := s.Scan(strings.NewReader(first), -1, time.Nanosecond, opts, "h", now); err != nil || len(s.knownList) != 0 {
		t.Fatalf("one line: %v, %d series remembered; want none", err, len(s.knownList))
	}
	if _, err := s.Scan(strings.NewReader(first+first), -1, time.Nanosecond, opts, "h", now); err != nil {
		t.Fatal(err)
	}
	series := "cpu,host=web-1,cpu=cpu1"
	e := s.lookupKnown([]byte(series+" "), len(series))
	if e == nil || len(s.knownList) != 1 || len(e.fields) != 4 {
		t.Fatalf("series remembered: %d, %+v; want %q with 4 fields", len(s.knownList), e, series)
	}
	for _, c := range []struct {
		fields string
		take   bool
	}{
		{"usage=2.25,n=-4i,up=false,s=\"\" 1699786600000000002", true},
		{"usage=2,n=4u,up=T,s=\"x\"", true},
		{"  usage=2,n=4i,up=f,s=\"x\"   1699786600000000002  ", true},
		{"usage=2,n=4i,up=f", false},
		{"usage=2,n=4i,up=f,s=\"x\",z=1", false},
		{"n=4i,usage=2,up=f,s=\"x\"", false},
		{"usage=2i,n=4i,up=f,s=\"x\"", false},
		{"usage=2.50,n=4i,up=f,s=\"x\"", false},
		{"usage=2,n=4i,up=f,s=\"x\" 1699796600000000000", false}, // past MaxFuture
		{"usage=2,n=4i,up=f,s=\"x\" 1x", false},
		{"usag=2,n=4i,up=f,s=\"x\"", false},
		{"usage_=2,n=4i,up=f,s=\"x\"", false},
		{"usage=", false},
	} {
		line := []byte(series + " " + c.fields)
		before := len(s.lines.Data)
		took, err := s.knownLine(line, len(series), e)
		if took != c.take || err != nil {
			t.Errorf("%q: knownLine took it: %v (%v); want %v", line, took, err, c.take)
		}
		if !c.take && len(s.lines.Data) != before {
			t.Errorf("%q: knownLine left %q behind", line, s.lines.Data[before:])
		}
	}
}
