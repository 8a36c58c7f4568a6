package points_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/metricgate/metricgate/pkg/points"
)

// scanOpts are small budgets, so that the fuzzer reaches each of them.
var scanOpts = points.Options{
	MaxPoints: 16,
	HostTag:   "host",
	Limits: points.Limits{
		MaxFields: 8, MaxTags: 8, MaxNameLen: 16, MaxValueLen: 32,
		MaxFuture: time.Hour,
	},
}

// reference is what the gateway did before the scanner: parse into points,
// then encode them and record what the checks read.
func reference(body string, precision time.Duration, o points.Options) (*points.Lines, error) {
	pts, err := points.ParseLineProtocol(strings.NewReader(body), precision, o, lpNow)
	if err != nil {
		return nil, err
	}
	var l points.Lines
	if err := points.EncodeLines(&l, pts, o.HostTag, "web-1", lpNow); err != nil {
		return nil, err
	}
	return &l, nil
}

// sameLines compares what the scanner made of a body with the reference.
func sameLines(t *testing.T, body string, got, want *points.Lines) {
	t.Helper()
	if !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("%q: got\n%q\nwant\n%q", body, got.Data, want.Data)
	}
	if got.Points != want.Points || got.Values != want.Values || !slices.Equal(got.Series, want.Series) ||
		!slices.Equal(got.Measurements, want.Measurements) || !slices.Equal(got.Fields, want.Fields) {
		t.Fatalf("%q: got %d points, %d values, series %x, measurements %v, fields %v;\nwant %d, %d, %x, %v, %v", body,
			got.Points, got.Values, got.Series, got.Measurements, got.Fields,
			want.Points, want.Values, want.Series, want.Measurements, want.Fields)
	}
}

// TestScanner runs bodies through the scanner and the parser and encoder it
// replaces: the same bytes, the same points and what the checks read.
func TestScanner(t *testing.T) {
	var s points.Scanner // reused, as the gateway reuses it
	o := scanOpts
	o.Limits = points.Limits{}
	for _, body := range []string{
		`cpu i=5i,f=0.5,b=true,s="ok \"yes\"",e=1e3,u=7u 1699786600000000000`,
		`disk,mount=/var,host=evil,dc=a free=1i 2`,
		`disk\ use,path=a\,b\=c free\ bytes=1i 3`,
		`m v=1i`,
		"# a comment\r\n\r\nm v=1i 1\r\n\n  # indented comment\nm v=2i 2",
		"m,a=1,b=2 v=1i,w=2i 1\nm,b=2,a=1 w=3i,v=4i 2\nn,a=x v=5i 3",
		"m s=\"two\nlines\" 1\nm v=1i 2\n",
		"m,z=1,a=2,host=x,hz=3 v=1",
		// Values in other forms than Encode writes them.
		"m a=1.50,b=007i,c=-0i,d=5.,e=.5,f=1000000,g=0.00001,h=T,i=False,j=1e-3,k=123456.78901234567,l=-0,m=0.0 1",
		"m a=9223372036854775807i,b=-9223372036854775808i,c=18u,d=0u,e=007u,f=123456789012345678901234567890 1",
		`m s="a\qb\\c\"d	e" 1`,
		`m\,n,t\ k=v\=w f\,g="x" 1`,
		"m,a=1 v=1 -5\nm v=2",
		"m v=1 1700000000\nm v=2",
		// Escaped measurements are not in the body as they are: their
		// lines are found once the scan is done.
		"a\\ b v=1 1\n\n# c\nc\\,d v=2 2\nx s=\"p\nq\" 3\na\\ b w=3 4\nc\\,d v=\"s\" 5",
	} {
		for _, prec := range []time.Duration{time.Nanosecond, time.Second} {
			if prec == time.Second && !strings.Contains(body, "1700000000\n") {
				continue
			}
			want, err := reference(body, prec, o)
			if err != nil {
				t.Fatalf("reference %q: %v", body, err)
			}
			got, err := s.Scan(strings.NewReader(body), int64(len(body)), prec, o, "web-1", lpNow)
			if err != nil {
				t.Fatalf("Scan %q: %v", body, err)
			}
			sameLines(t, body, got, want)
		}
	}
}

// TestScannerRejects checks that a refused body gets the parser's error,
// word for word, and that a body refused after good lines leaves nothing
// behind for the next.
func TestScannerRejects(t *testing.T) {
	long := strings.Repeat("a", 40)
	bodies := []string{
		"m v=1i 1\nm v=2i 2\nm v=abc 3\n", "m v=1i\nm\n", "m,t v=1", "m v=1 12x", "m v=NaN",
		"m v=9223372036854775808i", "m v=9223372036854775808u", "m v=-1u", "m v=1 9223372036854775807",
		"m v=1\n_m v=1", "m _v=1", "m time=1", "m,time=x v=1", "m,a=1,a=2 v=1", "m v=1,v=2",
		`m s="` + long + `"`, "m,t=" + long + " v=1", "m " + long + "=1", "m,t=a\\ v=1", "m\\ v=1",
		"m s=\"\xff\"", "m s=\"a\nb\" 1\n\n# c\nm _v=1", "m v=1\nm s=\"abc", "", "# one\n\n# two\n",
		strings.Repeat("m v=1 1\n", 17), "m host=1", "m a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1,i=1",
		"m,a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1,i=1 v=1", fmt.Sprintf("m v=1 %d", lpNow.Add(2*time.Hour).UnixNano()),
		"m v=1 1 2", "m,a=1 ,b=2 v=1", "m v=0x10", "m v=1e400", "m v=tru",
	}
	var s points.Scanner
	for _, body := range bodies {
		_, want := reference(body, time.Nanosecond, scanOpts)
		if want == nil {
			t.Fatalf("%q: the parser accepts it; the test wants a refused body", body)
		}
		_, got := s.Scan(strings.NewReader(body), -1, time.Nanosecond, scanOpts, "web-1", lpNow)
		if got == nil || got.Error() != want.Error() {
			t.Errorf("%q: got error %v, want %v", body, got, want)
		}
		// A good body after a refused one is whole.
		ok := "m v=1i 1699999999000000000\n"
		l, err := s.Scan(strings.NewReader(ok), -1, time.Nanosecond, scanOpts, "web-1", lpNow)
		if err != nil || string(l.Data) != "m,host=web-1 v=1i 1699999999000000000\n" || l.Points != 1 {
			t.Fatalf("after %q: got %q, %v", body, l.Data, err)
		}
	}
}

// TestScannerReadError checks that a failing body is reported as the
// parser reports it: the reader's error, kept for errors.As, unless a
// whole line before the failure was bad.
func TestScannerReadError(t *testing.T) {
	tooLarge := &http.MaxBytesError{Limit: 10}
	var s points.Scanner
	for _, body := range []string{"m v=1i 1\nm v=12", "m v=1i 1\n", ""} {
		_, err := s.Scan(io.MultiReader(strings.NewReader(body), errReader{tooLarge}), -1, time.Nanosecond, scanOpts, "h", lpNow)
		var got *http.MaxBytesError
		if !errors.As(err, &got) || !errors.Is(err, points.ErrInvalid) {
			t.Errorf("%q: got error %v, want ErrInvalid wrapping the *http.MaxBytesError", body, err)
		}
	}
	_, err := s.Scan(io.MultiReader(strings.NewReader("m v=1i 1\n_m v=1\nm v="), errReader{tooLarge}), -1, time.Nanosecond, scanOpts, "h", lpNow)
	var le *points.LineError
	if !errors.As(err, &le) || le.Line != 2 {
		t.Errorf("a bad line before the failure: got %v, want a *LineError for line 2", err)
	}
}

// TestScannerGrow checks that the scan asks for the memory of what it
// writes past GrowStep, and stops with the budget's error as it is.
func TestScannerGrow(t *testing.T) {
	body := batchLP(5000)
	var asked int64
	o := points.Options{HostTag: "host", Grow: func(n int64) error { asked += n; return nil }}
	var s points.Scanner
	l, err := s.Scan(bytes.NewReader(body), int64(len(body)), time.Nanosecond, o, "web-1", lpNow)
	if err != nil {
		t.Fatal(err)
	}
	if total := asked + points.GrowStep; total < int64(len(l.Data)) {
		t.Errorf("asked for %d bytes beyond the first %d, for %d bytes written", asked, points.GrowStep, len(l.Data))
	}
	full := errors.New("no room")
	o.Grow = func(int64) error { return full }
	if _, err := s.Scan(bytes.NewReader(body), int64(len(body)), time.Nanosecond, o, "web-1", lpNow); err != full {
		t.Errorf("got %v, want the budget's error as it is", err)
	}
}

// TestLinesSummary checks what the checks read of a request: its distinct
// measurements and (measurement, field, type), each with its first line.
func TestLinesSummary(t *testing.T) {
	var s points.Scanner
	body := "cpu,h=a v=1,n=1i 1\n\ncpu,h=b v=2,n=2u 2\nmem free=1i 3\ncpu v=\"x\" 4\nmem free=2i 5\n"
	l, err := s.Scan(strings.NewReader(body), -1, time.Nanosecond, scanOpts, "web-1", lpNow)
	if err != nil {
		t.Fatal(err)
	}
	wantM := []points.Place{{"cpu", 0, 1}, {"mem", 2, 4}}
	wantF := []points.FieldType{{"cpu", "v", lineprotocol.Float, 0, 1}, {"cpu", "n", lineprotocol.Int, 0, 1},
		{"mem", "free", lineprotocol.Int, 2, 4}, {"cpu", "v", lineprotocol.String, 3, 5}}
	if !slices.Equal(l.Measurements, wantM) || !slices.Equal(l.Fields, wantF) || l.Values != 7 || l.Points != 5 {
		t.Errorf("got %v, %v, %d values, %d points; want %v, %v, 7, 5", l.Measurements, l.Fields, l.Values, l.Points, wantM, wantF)
	}
	if l.Series[0] == l.Series[1] || l.Series[2] != l.Series[4] || l.Series[3] == l.Series[0] {
		t.Errorf("series hashes %x: want points 0, 1 and 3 apart and 2 and 4 alike", l.Series)
	}
	if w := l.Fields[3].Where(); w != "line 5" {
		t.Errorf("Where = %q, want line 5", w)
	}
}

// TestLinesSummaryMany is TestLinesSummary past manyKeys, where the
// measurements, shapes and fields seen move from lists compared in turn to
// sets: each (measurement, field, type) is listed once, with its first
// line, whichever way it was found, the same on a second request through
// the same Scanner.
func TestLinesSummaryMany(t *testing.T) {
	var body strings.Builder
	for i := range 120 {
		// 40 measurements, each with fields of two types over the lines,
		// a field set that changes every line: many shapes.
		m, f := i%40, i%7
		fmt.Fprintf(&body, "m%d a%d=1i,b=%d %d\n", m, f, i, i+1)
		if i%5 == 0 {
			fmt.Fprintf(&body, "m%d a%d=\"s\" %d\n", m, f, i+1)
		}
	}
	o := points.Options{MaxPoints: 1000, HostTag: "host"}
	pts, err := points.ParseLineProtocol(strings.NewReader(body.String()), time.Nanosecond, o, lpNow)
	if err != nil {
		t.Fatal(err)
	}
	var wantM []points.Place
	var wantF []points.FieldType
	for i, p := range pts {
		if !slices.ContainsFunc(wantM, func(w points.Place) bool { return w.Measurement == p.Measurement }) {
			wantM = append(wantM, points.Place{Measurement: p.Measurement, Point: i, Line: i + 1})
		}
		for _, f := range p.Fields {
			k := f.Value.Kind()
			if k == lineprotocol.Uint {
				k = lineprotocol.Int
			}
			if !slices.ContainsFunc(wantF, func(w points.FieldType) bool {
				return w.Measurement == p.Measurement && w.Field == f.Key && w.Kind == k
			}) {
				wantF = append(wantF, points.FieldType{Measurement: p.Measurement, Field: f.Key, Kind: k, Point: i, Line: i + 1})
			}
		}
	}
	if len(wantM) != 40 || len(wantF) < 100 {
		t.Fatalf("the body has %d measurements and %d fields: it does not test what it says", len(wantM), len(wantF))
	}
	var s points.Scanner
	for round := range 2 {
		l, err := s.Scan(strings.NewReader(body.String()), -1, time.Nanosecond, o, "web-1", lpNow)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(l.Measurements, wantM) || !slices.Equal(l.Fields, wantF) || l.Points != len(pts) {
			t.Fatalf("request %d: got %d points, %v, %v; want %d, %v, %v", round+1, l.Points, l.Measurements, l.Fields, len(pts), wantM, wantF)
		}
	}
}

// FuzzScanner is the differential test of the scanner against the parser
// and encoder it replaces: both accept or refuse the same bodies, a refused
// body gets the same message, and an accepted one the same bytes, points
// and summary.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{
		"cpu,host=a,region=eu usage=0.5,count=3i,up=true,state=\"ok\" 1699786600000000000\n",
		"m v=1u\n# comment\n\nm s=\"multi\nline\" 5\r\n",
		`disk\ use,path=a\,b\=c free\ bytes=1i 3`,
		"m,t v=1", "m v=", "m v=1 x", "m v=1,v=2", "_m v=1", "m,a=1,a=2 v=1", "m v=1 -9223372036854775808",
		"", "#", "m v=\"\xff\"", "m\\ v=1", "m,t=a\\ v=1", "m a=1.50,b=007i,c=-0i,d=5.,e=.5,f=1e6,g=1e-5 1",
		"m,z=1,a=2,host=x v=T 1\nn,b=\\,c v=\"a\\qb\" 2", "m v=0.0001,w=123456.123456789,x=-0 1",
	} {
		f.Add(s, uint8(0), false)
	}
	for _, s := range fastSeeds {
		for prec := range uint8(6) {
			f.Add(s, prec, prec%2 == 0)
		}
	}
	precisions := []time.Duration{time.Nanosecond, time.Microsecond, time.Millisecond, time.Second, time.Minute, time.Hour}
	var s points.Scanner
	f.Fuzz(func(t *testing.T, body string, prec uint8, unlimited bool) {
		precision := precisions[int(prec)%len(precisions)]
		o := scanOpts
		if unlimited {
			o.Limits, o.MaxPoints = points.Limits{}, 0
		}
		want, werr := reference(body, precision, o)
		got, gerr := s.Scan(strings.NewReader(body), -1, precision, o, "web-1", lpNow)
		switch {
		case werr != nil && gerr == nil:
			t.Fatalf("%q: the scanner accepts what the parser refuses with %v", body, werr)
		case werr == nil && gerr != nil:
			t.Fatalf("%q: the scanner refuses with %v what the parser accepts", body, gerr)
		case werr != nil && gerr.Error() != werr.Error():
			t.Fatalf("%q: got error %q, want %q", body, gerr, werr)
		case werr == nil:
			sameLines(t, body, got, want)
		}
	})
}

// fastSeeds are bodies at the edges of the Scanner's fast path: lines it
// takes, and lines just past what it takes, which the Decoder-based path
// must decide.
var fastSeeds = []string{
	// The host tag absent, first, last, in the middle, twice, and keys
	// next to it in order.
	"cpu,region=eu,zone=a usage=0.5,n=3i 1699786600000000001\n",
	"cpu,host=web-1,cpu=cpu1,region=eu-west usage_user=1.5,usage_idle=84.125 1699786600000000002\n",
	"cpu,a=1,host=x v=1i 1\ncpu,host=x,z=1 v=2i 2\ncpu,hos=1,hosta=2 v=3i 3\ncpu,host=a,host=b v=4i 4",
	"m,hz=1,ha=2,host=1,h=3 v=1", "m,host=1 v=1", "m,b=1,a=2,b=3 v=1", "m,c=1,b=2,a=3 v=1i,w=2u,x=t,y=F 5",
	// Repeated and reserved keys; the host tag's name as a field.
	"m v=1,w=2,v=3", "m,time=1 v=1", "m time=1", "m _v=1", "_m v=1", "m host=1i", "m,_t=1 v=1",
	// Names and values at their limits (16 and 32 bytes in scanOpts).
	"mmmmmmmmmmmmmmmm,kkkkkkkkkkkkkkkk=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv ffffffffffffffff=\"ssssssssssssssssssssssssssssssss\"",
	"mmmmmmmmmmmmmmmmm v=1", "m,kkkkkkkkkkkkkkkkk=v v=1", "m,k=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv v=1",
	"m fffffffffffffffff=1", "m s=\"sssssssssssssssssssssssssssssssss\"", "m s=\"\"", "m s=\"a b,c=d\" 1",
	// Too many tags and fields for scanOpts (8 each), and just enough.
	"m,a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1 a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1",
	"m,a=1,b=1,c=1,d=1,e=1,f=1,g=1,host=1,i=1 v=1", "m a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1,i=1",
	// Timestamps at the window's edge (lpNow plus an hour), at the ends of
	// int64 and of what InfluxDB stores, negative, with leading zeros.
	"m v=1 1700003600123456789", "m v=1 1700003600123456790", "m v=1 1700003600", "m v=1 1700003601",
	"m v=1 9223372036854775806", "m v=1 -9223372036854775806", "m v=1 -9223372036854775807", "m v=1 -5",
	"m v=1 007", "m v=1 -0", "m v=1 0", "m v=1 -", "m v=1 1-2", "m v=1 12345678901234567890",
	"m v=1 - ", "m v=1 1699786600000000000 ", "m v=1 16997866000000000000 ", "m v=1 1699786600000x000",
	// Values in and out of canonical form.
	"m a=1i,b=-1i,c=0i,d=123456789012345678i,e=1234567890123456789i,f=01i,g=-0i,h=1u,i=-1u,j=0u 1",
	"m a=0.5,b=-0.5,c=100,d=999999,e=1000000,f=0.0001,g=0.00001,h=1.10,i=.5,j=5.,k=1e3,l=-0,m=0 1",
	"m a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE,k=tRUE,l=yes 1",
	// Empty tag values, spaces, CR, comments, blank lines, odd bytes.
	"m,t= v=1", "m,=v v=1", "m, v=1", "m,t=v", "m v=1  ", "m v=1 1  ", "m   v=1   1   ", "m,t=v   v=1",
	"  m v=1", "m v=1 1\r\n", "m v=1\r\n", "m v=1 1\r", "m v=1\r", "m v=1 1\r\r\n", "m,t=v\r\n", "\r\n",
	"# c\nm v=1 1\n#\n\nm v=2 2\n", "m v=1 1\n  # c\n\t\nm v=2 2", "m\tv=1", "m v=1\t1", "m v=1 1\x00",
	"m,t=\xc3\xa9 v=1", "m s=\"\xc3\xa9\" 1", "m#x,t#=#v a#=1 1", "m v=1,", "m v=1, w=2", "m v=1 ,w=2", "m v",
	"m =1", "m v==1", "m,t=a=b v=1", "m v=1 1 2", "m v=1i2 1",
	// A string across lines, and plain lines after lines the fast path
	// leaves to the Decoder.
	"m s=\"a\nb\" 1\nm v=1 2\nm\\ x v=1 3\nm v=1 4\nm,t=a\\ b v=1 5\nm v=\"x\\\"\" 6\nm v=1 7",
	"m v=1 1\nm v=1 x\nm v=1 3", "m v=1 1\n\n\nm v=2 2\nm v=3 3\n\n",
	// A series again, with the fields of the line before it and with
	// others: fewer, more, reordered, of another kind, out of form, under
	// another key, or none; the series with a host tag, spaces, a CR.
	"m,t=1 a=1,b=2i 1\nm,t=1 a=2,b=3i 2\nm,t=1 a=2 3\nm,t=1 a=2,b=3i,c=4 4\nm,t=1 b=3i,a=2 5\nm,t=1 a=t,b=3i 6\n" +
		"m,t=1 a=2,b=\"x\" 7\nm,t=1 a=1.50,b=1i 8\nm,t=1 ab=1,b=1i 9\nm,t=1 a=1,b=1u 10\nm,t=1 a=1,b=1i 11\nm,t=1 12\n" +
		"m,t=1 a=1,b=2i,c=3 13\nm,t=1 a=1,b=2i,c=4 14\nm,t=1 a=1,b=2i, 15\nm,t=1 a=1,b=2i,c=4 x\n",
	"m,host=a,t=1 v=1 1\nm,host=a,t=1 v=2 2\nm,host=b,t=1 v=3 3\nm,host=a,t=1   v=4   4\r\nm,host=a,t=1 v=5\n",
	"m v=1 1\nm v=2\nm w=3 3\nm v=4 4\nm v=t 5\nm v=\"s\" 6\nm v=\"s t\" 7\nm v=5 9223372036854775807\nm v=6 1700003600123456790\n",
	"m,t=1 v=1 1\nm,t=1 v=1 1\nm,t=1 v=1i 2\nm,t=1\\ x v=1 3\nm,t=1 v=1 4\nm,t=1 v=1 4 5\nm,t=1 v=1,v=2 6\nm,t=1 v=1 7",
}

// scanBoth scans body with the fast path and without it, each with a
// Scanner of its own, and fails t unless both accept it with the same
// bytes and summary, or both refuse it with the same error.
func scanBoth(t *testing.T, fast, slow *points.Scanner, body string, precision time.Duration, o points.Options) {
	t.Helper()
	got, gerr := fast.Scan(strings.NewReader(body), -1, precision, o, "web-1", lpNow)
	want, werr := slow.Scan(strings.NewReader(body), -1, precision, o, "web-1", lpNow)
	switch {
	case (gerr == nil) != (werr == nil):
		t.Fatalf("%q: fast path error %v, Decoder-only error %v", body, gerr, werr)
	case werr != nil && gerr.Error() != werr.Error():
		t.Fatalf("%q: got error %q, want %q", body, gerr, werr)
	case werr == nil:
		sameLines(t, body, got, want)
	}
}

// TestScannerFastPath runs the fast path's edge cases against the
// Decoder-only path at each precision, with the small budgets and with
// none.
func TestScannerFastPath(t *testing.T) {
	var fast, slow points.Scanner
	slow.SetDecoderOnly(true)
	// More series than the Scanner remembers, each twice, in Telegraf's
	// shapes and in one of its own.
	var many strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&many, "m,s=%d v=%di,w=0.5 %d\n", i%1500, i, 1700000000000000000+i)
	}
	bodies := append(slices.Clip(fastSeeds), many.String(), string(telegrafLP(2000)))
	for _, body := range bodies {
		for _, o := range fastOptions {
			for _, p := range []time.Duration{time.Nanosecond, time.Second, time.Hour} {
				scanBoth(t, &fast, &slow, body, p, o)
			}
		}
	}
}

// TestScannerReusesMemory checks that a Scanner allocates next to nothing
// for a body like the one before: its buffers, and the series it
// remembers with their fields, keep their memory from body to body.
func TestScannerReusesMemory(t *testing.T) {
	var s points.Scanner
	body := telegrafLP(2000)
	scan := func() {
		if _, err := s.Scan(bytes.NewReader(body), int64(len(body)), time.Nanosecond, points.Options{HostTag: "host"}, "web-1", lpNow); err != nil {
			t.Fatal(err)
		}
	}
	scan()
	if allocs := testing.AllocsPerRun(5, scan); allocs > 10 {
		t.Errorf("a Telegraf-shaped body of 2000 lines took %.0f allocations, want at most 10", allocs)
	}
}

// fastOptions are the options the fast path is compared under: small
// budgets with a window on both sides of now, and no budgets at all.
var fastOptions = func() []points.Options {
	small := scanOpts
	small.Limits.MaxPast = 24 * time.Hour
	return []points.Options{small, {HostTag: "host"}}
}()

// FuzzScannerFastPath is the differential test of the Scanner's fast path
// against its Decoder-only path, the path it stands in for: the same
// bytes, points, values, series and summary for an accepted body, the same
// error for a refused one.
func FuzzScannerFastPath(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add(s, uint8(0), false)
		f.Add(s, uint8(3), true)
	}
	f.Add(string(telegrafLP(30)), uint8(0), true)
	precisions := []time.Duration{time.Nanosecond, time.Microsecond, time.Millisecond, time.Second, time.Minute, time.Hour}
	var fast, slow points.Scanner
	slow.SetDecoderOnly(true)
	f.Fuzz(func(t *testing.T, body string, prec uint8, unlimited bool) {
		o := fastOptions[0]
		if unlimited {
			o = fastOptions[1]
		}
		scanBoth(t, &fast, &slow, body, precisions[int(prec)%len(precisions)], o)
	})
}
