package points_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/points"
)

// lpNow is the server's time in these tests.
var lpNow = time.Unix(0, 1700000000123456789)

func TestParseLineProtocol(t *testing.T) {
	tests := []struct {
		name, body string
		precision  time.Duration
		want       string
	}{
		{"Types", `cpu i=5i,f=0.5,b=true,s="ok \"yes\"",e=1e3,u=7u 1699786600000000000`, time.Nanosecond,
			"cpu,host=web-1 i=5i,f=0.5,b=true,s=\"ok \\\"yes\\\"\",e=1000,u=7i 1699786600000000000\n"},
		{"TagsAndSpoofedHost", `disk,mount=/var,host=evil,dc=a free=1i 2`, time.Nanosecond,
			"disk,dc=a,host=web-1,mount=/var free=1i 2\n"},
		{"Escapes", `disk\ use,path=a\,b\=c free\ bytes=1i 3`, time.Nanosecond,
			"disk\\ use,host=web-1,path=a\\,b\\=c free\\ bytes=1i 3\n"},
		{"NoTimestamp", `m v=1i`, time.Nanosecond, "m,host=web-1 v=1i 1700000000123456789\n"},
		{"NoTimestampSeconds", `m v=1i`, time.Second, "m,host=web-1 v=1i 1700000000000000000\n"},
		{"Seconds", `m v=1i 1700000000`, time.Second, "m,host=web-1 v=1i 1700000000000000000\n"},
		{"Milliseconds", `m v=1i 1700000000123`, time.Millisecond, "m,host=web-1 v=1i 1700000000123000000\n"},
		{"Microseconds", `m v=1i 1700000000123456`, time.Microsecond, "m,host=web-1 v=1i 1700000000123456000\n"},
		{"Minutes", `m v=1i 28333333`, time.Minute, "m,host=web-1 v=1i 1699999980000000000\n"},
		{"Hours", `m v=1i 472222`, time.Hour, "m,host=web-1 v=1i 1699999200000000000\n"},
		{"NegativeTimestamp", `m v=1i -5`, time.Nanosecond, "m,host=web-1 v=1i -5\n"},
		{"CommentsBlankLinesCRLF", "# a comment\r\n\r\nm v=1i 1\r\n\n  # indented comment\nm v=2i 2", time.Nanosecond,
			"m,host=web-1 v=1i 1\nm,host=web-1 v=2i 2\n"},
		// Names reused from the line before, and tags and fields cut from
		// shared arrays: each line keeps its own.
		{"LinesChangeNames", "m,a=1,b=2 v=1i,w=2i 1\nm,b=2,a=1 w=3i,v=4i 2\nn,a=x v=5i 3", time.Nanosecond,
			"m,a=1,b=2,host=web-1 v=1i,w=2i 1\nm,a=1,b=2,host=web-1 w=3i,v=4i 2\nn,a=x,host=web-1 v=5i 3\n"},
		{"MultiLineString", "m s=\"two\nlines\" 1\nm v=1i 2\n", time.Nanosecond,
			"m,host=web-1 s=\"two\\nlines\" 1\nm,host=web-1 v=1i 2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pts, err := points.ParseLineProtocol(strings.NewReader(tt.body), tt.precision, opts, lpNow)
			if err != nil {
				t.Fatalf("ParseLineProtocol: %v", err)
			}
			got, err := points.Encode(nil, pts, "host", "web-1", lpNow)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestParseLineProtocolLines checks that each point knows its line, with
// comments, blank lines and a string spanning lines before it.
func TestParseLineProtocolLines(t *testing.T) {
	body := "# header\n\nm v=1i 1\nm s=\"a\nb\nc\" 2\n# note\nm v=3i 3\n"
	pts, err := points.ParseLineProtocol(strings.NewReader(body), time.Nanosecond, opts, lpNow)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, p := range pts {
		got = append(got, p.Line)
	}
	if fmt.Sprint(got) != "[3 4 8]" {
		t.Errorf("got lines %v, want [3 4 8]", got)
	}
}

func TestParseLineProtocolRejects(t *testing.T) {
	long := strings.Repeat("a", 64*1024+1)
	// manyTags returns n tags ",k0=vvv...,k1=vvv..." with values of size bytes.
	manyTags := func(n, size int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, ",k%d=%s", i, strings.Repeat("v", size))
		}
		return b.String()
	}
	tests := []struct {
		name, body string
		want       error
		mention    string
	}{
		{"BadFieldValue", "m v=1i 1\nm v=2i 2\nm v=abc 3\n", points.ErrInvalid, "line 3, column 5: field value has unrecognized type"},
		{"NoFields", "m v=1i\nm\n", points.ErrInvalid, "line 2"},
		{"TagWithoutValue", "m,t v=1", points.ErrInvalid, "line 1, column 3"},
		{"BadTimestamp", "m v=1 12x", points.ErrInvalid, "line 1, column 7: invalid timestamp"},
		{"NaN", "m v=NaN", points.ErrInvalid, "line 1"},
		{"IntOverflow", "m v=9223372036854775808i", points.ErrInvalid, "out of range"},
		{"UnsignedTooLarge", "m v=9223372036854775808u", points.ErrInvalid, "line 1: field \"v\": unsigned integer"},
		{"TimestampReserved", "m v=1 9223372036854775807", points.ErrInvalid, "outside the range"},
		{"ReservedMeasurement", "m v=1\n_m v=1", points.ErrInvalid, "line 2: measurement \"_m\" must not start with '_'"},
		{"ReservedField", "m _v=1", points.ErrInvalid, "line 1: field \"_v\""},
		{"TimeField", "m time=1", points.ErrInvalid, `field must not be "time"`},
		{"TimeTag", "m,time=x v=1", points.ErrInvalid, `tag key must not be "time"`},
		{"DuplicateTag", "m,a=1,a=2 v=1", points.ErrInvalid, `line 1: tag key "a" appears twice`},
		{"DuplicateField", "m v=1,v=2", points.ErrInvalid, `line 1: field "v" appears twice`},
		// Past 16 keys a line's repeated keys are found through a map.
		{"DuplicateTagAmongMany", "m" + manyTags(20, 1) + ",k3=x v=1", points.ErrInvalid, `line 1: tag key "k3" appears twice`},
		{"DuplicateFieldAmongMany", "m " + strings.ReplaceAll(strings.TrimPrefix(manyTags(20, 1), ","), "=v", "=1") + ",k17=2", points.ErrInvalid, `line 1: field "k17" appears twice`},
		{"DuplicateTagOnSecondManyTagLine", "m" + manyTags(20, 1) + " v=1\nm" + manyTags(18, 1) + ",k3=w v=1", points.ErrInvalid, `line 2: tag key "k3" appears twice`},
		{"LongString", `m s="` + long + `"`, points.ErrInvalid, "longer than 65536 bytes"},
		{"LongTagValue", "m,t=" + long + " v=1", points.ErrInvalid, `more than 65535 bytes, the longest series key`},
		{"LongSeriesKey", "m" + manyTags(66, 1000) + " v=1", points.ErrInvalid, `line 1: the measurement and tags are more than 65535 bytes`},
		{"InvalidUTF8", "m s=\"\xff\"", points.ErrInvalid, "utf-8"},
		{"SemanticErrorAfterMultiLineString", "m s=\"a\nb\" 1\n\n# c\nm _v=1", points.ErrInvalid, "line 5:"},
		{"SemanticErrorAfterLongLine", "m s=\"" + strings.Repeat("x", 20000) + "\" 1\nm,time=x v=1", points.ErrInvalid, "line 2:"},
		{"UnclosedString", "m v=1\nm s=\"abc", points.ErrInvalid, "line 2"},
		{"Empty", "", points.ErrEmpty, "no lines"},
		{"OnlyComments", "# one\n\n# two\n", points.ErrEmpty, "no lines"},
		{"TooManyPoints", "m v=1 1\nm v=1 2\nm v=1 3\nm v=1 4\n", points.ErrTooManyPoints, "at most 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := points.ParseLineProtocol(strings.NewReader(tt.body), time.Nanosecond, opts, lpNow)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("got error %q, want it to mention %q", err, tt.mention)
			}
		})
	}
	_, err := points.ParseLineProtocol(strings.NewReader("m v=1 9223372037"), time.Second, opts, lpNow)
	if !errors.Is(err, points.ErrInvalid) || !strings.Contains(err.Error(), "outside the range") {
		t.Errorf("seconds overflowing int64 nanoseconds: got %v, want ErrInvalid naming the range", err)
	}
	if _, err := points.ParseLineProtocol(strings.NewReader("m v=1"), 0, opts, lpNow); !errors.Is(err, points.ErrInvalid) {
		t.Errorf("precision 0: got %v, want ErrInvalid", err)
	}
}

// TestParseLineProtocolReadError checks that a failing body is reported as
// such, with its cause kept, even when it cuts a line that then looks
// complete.
func TestParseLineProtocolReadError(t *testing.T) {
	tooLarge := &http.MaxBytesError{Limit: 10}
	for _, tt := range []struct {
		name string
		body io.Reader
	}{
		{"MidLine", io.MultiReader(strings.NewReader("m v=1i 1\nm v=12"), errReader{tooLarge})},
		{"AtLineEnd", io.MultiReader(strings.NewReader("m v=1i 1\n"), errReader{tooLarge})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := points.ParseLineProtocol(tt.body, time.Nanosecond, opts, lpNow)
			var got *http.MaxBytesError
			if !errors.As(err, &got) || !errors.Is(err, points.ErrInvalid) {
				t.Errorf("got error %v, want ErrInvalid wrapping the *http.MaxBytesError", err)
			}
		})
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// FuzzParseLineProtocol checks that no body makes the parser panic, that
// every error is one of its sentinels, and that every body it accepts
// encodes to line protocol that parses back to as many points with the same
// measurements and fields.
func FuzzParseLineProtocol(f *testing.F) {
	for _, s := range []string{
		"cpu,host=a,region=eu usage=0.5,count=3i,up=true,state=\"ok\" 1699786600000000000\n",
		"m v=1u\n# comment\n\nm s=\"multi\nline\" 5\r\n",
		`disk\ use,path=a\,b\=c free\ bytes=1i 3`,
		"m,t v=1", "m v=", "m v=1 x", "m v=1,v=2", "_m v=1", "m,a=1,a=2 v=1", "m v=1 -9223372036854775808",
		"", "#", "m v=\"\xff\"", "m\\ v=1", "m,t=a\\ v=1",
	} {
		f.Add(s, uint8(0))
	}
	precisions := []time.Duration{time.Nanosecond, time.Microsecond, time.Millisecond, time.Second, time.Minute, time.Hour}
	f.Fuzz(func(t *testing.T, body string, prec uint8) {
		precision := precisions[int(prec)%len(precisions)]
		pts, err := points.ParseLineProtocol(strings.NewReader(body), precision, opts, lpNow)
		if err != nil {
			if !errors.Is(err, points.ErrInvalid) && !errors.Is(err, points.ErrEmpty) && !errors.Is(err, points.ErrTooManyPoints) {
				t.Fatalf("error %v is none of the parser's sentinels", err)
			}
			return
		}
		lines, err := points.Encode(nil, pts, "host", "h", lpNow)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", body, err)
		}
		again, err := points.ParseLineProtocol(strings.NewReader(string(lines)), time.Nanosecond, points.Options{}, lpNow)
		if err != nil {
			t.Fatalf("encoded %q as %q, which does not parse: %v", body, lines, err)
		}
		if len(again) != len(pts) {
			t.Fatalf("got %d points back from %q, want %d", len(again), lines, len(pts))
		}
		for i := range pts {
			a, b := pts[i], again[i]
			if a.Measurement != b.Measurement || len(a.Fields) != len(b.Fields) || !a.Time.Equal(b.Time) || !slices.Contains(b.Tags, points.Tag{Key: "host", Value: "h"}) {
				t.Fatalf("point %d: got %+v back, want %+v with host h", i, b, a)
			}
			for j := range a.Fields {
				if a.Fields[j].Key != b.Fields[j].Key || !a.Fields[j].Value.Equal(b.Fields[j].Value) {
					t.Fatalf("point %d field %d: got %v=%v back, want %v=%v", i, j, b.Fields[j].Key, b.Fields[j].Value, a.Fields[j].Key, a.Fields[j].Value)
				}
			}
		}
	})
}
