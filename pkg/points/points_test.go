package points_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/points"
)

var opts = points.Options{DefaultMeasurement: "custom_metrics", MaxPoints: 3}

func TestParseAndEncode(t *testing.T) {
	now := time.Unix(0, 1700000000000000000)
	tests := []struct {
		name, body, want string
	}{
		{"Example", `{"field": "os_updates", "value": 5, "timestamp": 1699786600000000000}`,
			"custom_metrics,host=web-1 os_updates=5i 1699786600000000000\n"},
		{"Float", `{"field":"load","value":0.5,"timestamp":1}`, "custom_metrics,host=web-1 load=0.5 1\n"},
		{"FloatWithZeroFraction", `{"field":"load","value":5.0,"timestamp":1}`, "custom_metrics,host=web-1 load=5 1\n"},
		{"Exponent", `{"field":"big","value":1e3,"timestamp":1}`, "custom_metrics,host=web-1 big=1000 1\n"},
		{"Bool", `{"field":"up","value":true,"timestamp":1}`, "custom_metrics,host=web-1 up=true 1\n"},
		{"String", `{"field":"state","value":"ok \"yes\"","timestamp":1}`, "custom_metrics,host=web-1 state=\"ok \\\"yes\\\"\" 1\n"},
		{"NoTimestamp", `{"field":"x","value":-3}`, "custom_metrics,host=web-1 x=-3i 1700000000000000000\n"},
		{"MeasurementAndTags", `{"measurement":"disk use","field":"free","value":1,"tags":{"mount":"/var","dc":"a=b"},"timestamp":2}`,
			"disk\\ use,dc=a\\=b,host=web-1,mount=/var free=1i 2\n"},
		{"HostTagSpoofReplaced", `{"field":"x","value":1,"tags":{"host":"evil","zone":"z"},"timestamp":3}`,
			"custom_metrics,host=web-1,zone=z x=1i 3\n"},
		{"Batch", ` [ {"field":"a","value":1,"timestamp":1}, {"field":"b","value":2,"timestamp":2} ] `,
			"custom_metrics,host=web-1 a=1i 1\ncustom_metrics,host=web-1 b=2i 2\n"},
		// Names repeated from the point before are reused, and the points'
		// tags share one array: each point must keep its own.
		{"BatchNamesRepeatAndChange", `[{"measurement":"m","field":"f","value":1,"tags":{"a":"1","b":"2"},"timestamp":1},
			{"measurement":"m","field":"f","value":2,"tags":{"b":"2","a":"1"},"timestamp":2},
			{"field":"g","value":3,"tags":{"a":"x"},"timestamp":3}]`,
			"m,a=1,b=2,host=web-1 f=1i 1\nm,a=1,b=2,host=web-1 f=2i 2\ncustom_metrics,a=x,host=web-1 g=3i 3\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pts, err := points.ParseJSON(strings.NewReader(tt.body), opts)
			if err != nil {
				t.Fatalf("ParseJSON: %v", err)
			}
			got, err := points.Encode(nil, pts, "host", "web-1", now)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestParseJSONBodySize checks that a declared body size only sizes the
// read buffer: a size that is right, short or long reads the same points.
func TestParseJSONBodySize(t *testing.T) {
	body := batchJSON(2000)
	want, err := points.ParseJSON(bytes.NewReader(body), points.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{int64(len(body)), int64(len(body)) / 3, int64(len(body)) * 2} {
		got, err := points.ParseJSON(bytes.NewReader(body), points.Options{BodySize: size})
		if err != nil {
			t.Fatalf("BodySize %d: %v", size, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("BodySize %d: %d points differ from the %d read without it", size, len(got), len(want))
		}
	}
}

// jsonTagList returns n tags "k0":"value","k1":"value"...
func jsonTagList(n int) string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf(`"k%d":"value"`, i)
	}
	return strings.Join(tags, ",")
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, body string
		want       error
		mention    string
	}{
		{"Empty", ``, points.ErrInvalid, "empty"},
		{"Malformed", `{"field": "x", "value": }`, points.ErrInvalid, "malformed JSON"},
		{"Truncated", `{"field": "x", "value": 1`, points.ErrInvalid, "ends in the middle"},
		{"DuplicateKey", `{"field": "x", "value": 1, "value": 2}`, points.ErrInvalid, `duplicate key "value"`},
		{"NotObject", `42`, points.ErrInvalid, "JSON object"},
		{"MissingField", `{"value": 1}`, points.ErrInvalid, `"field" is required`},
		{"MissingValue", `{"field": "x"}`, points.ErrInvalid, `"value" is required`},
		{"NullValue", `{"field": "x", "value": null}`, points.ErrInvalid, "got null"},
		{"ObjectValue", `{"field": "x", "value": {"a":1}}`, points.ErrInvalid, "must be a number"},
		{"FieldNotString", `{"field": 5, "value": 1}`, points.ErrInvalid, `"field" must be a string`},
		{"TagNotString", `{"field": "x", "value": 1, "tags": {"a": 1}}`, points.ErrInvalid, `"tags`},
		{"FloatTimestamp", `{"field": "x", "value": 1, "timestamp": 1.5}`, points.ErrInvalid, "integer number of nanoseconds"},
		{"StringTimestamp", `{"field": "x", "value": 1, "timestamp": "now"}`, points.ErrInvalid, "timestamp"},
		{"HugeInt", `{"field": "x", "value": 99999999999999999999}`, points.ErrInvalid, "64-bit"},
		{"UnknownKey", `{"field": "x", "vaule": 1}`, points.ErrInvalid, `unknown key "vaule"`},
		{"EmptyField", `{"field": "", "value": 1}`, points.ErrInvalid, "field must not be empty"},
		{"ReservedField", `{"field": "_x", "value": 1}`, points.ErrInvalid, "reserved"},
		{"TimeField", `{"field": "time", "value": 1}`, points.ErrInvalid, "reserved"},
		{"ControlInMeasurement", `{"measurement": "a\nb", "field": "x", "value": 1}`, points.ErrInvalid, "control character"},
		{"EmptyTagValue", `{"field": "x", "value": 1, "tags": {"a": ""}}`, points.ErrInvalid, `tag "a"`},
		{"EmptyBatch", `[]`, points.ErrEmpty, "empty"},
		{"OversizeBatch", `[{"field":"a","value":1},{"field":"a","value":1},{"field":"a","value":1},{"field":"a","value":1}]`, points.ErrTooManyPoints, "at most 3"},
		{"SecondPointBad", `[{"field":"a","value":1},{"field":"a"}]`, points.ErrInvalid, "point 1"},
		// A name that differs from the point before is checked again.
		{"LaterPointBadMeasurement", `[{"measurement":"m","field":"x","value":1},{"measurement":"_m","field":"x","value":1}]`,
			points.ErrInvalid, `point 1: measurement "_m" must not start`},
		{"LaterPointBadField", `[{"field":"x","value":1},{"field":"_x","value":1}]`, points.ErrInvalid, `point 1: field "_x" must not start`},
		{"LaterPointBadTagKey", `[{"field":"x","value":1,"tags":{"a":"v"}},{"field":"x","value":1,"tags":{"time":"v"}}]`,
			points.ErrInvalid, `point 1: tag key must not be "time"`},
		{"LaterPointBadTagValue", `[{"field":"x","value":1,"tags":{"a":"v"}},{"field":"x","value":1,"tags":{"a":"v\\"}}]`,
			points.ErrInvalid, `point 1: tag "a" has an invalid value`},
		{"DuplicateTag", `{"field":"x","value":1,"tags":{"a":"1","a":"2"}}`, points.ErrInvalid, `tag key "a" appears twice`},
		{"DuplicateTagAmongMany", `{"field":"x","value":1,"tags":{` + jsonTagList(20) + `,"k3":"y"}}`, points.ErrInvalid, `tag key "k3" appears twice`},
		{"SeriesKeyTooLong", `{"field":"x","value":1,"tags":{` + jsonTagList(7000) + `}}`, points.ErrInvalid, "longest series key InfluxDB stores"},
		{"TrailingData", `{"field":"a","value":1} {}`, points.ErrInvalid, "after the JSON value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := points.ParseJSON(strings.NewReader(tt.body), opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

// FuzzParseJSON checks that no body makes the parser panic, and that every
// body it accepts encodes to line protocol.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		`{"field": "os_updates", "value": 5, "timestamp": 1699786600000000000}`,
		`[{"measurement":"m","field":"f","value":1.5,"tags":{"a":"b"}},{"field":"g","value":"s"}]`,
		`{"field":"x","value":true}`, `[]`, `{`, `[1]`, `{"field":"x","value":1e400}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		pts, err := points.ParseJSON(strings.NewReader(body), opts)
		if err != nil {
			if !errors.Is(err, points.ErrInvalid) && !errors.Is(err, points.ErrEmpty) && !errors.Is(err, points.ErrTooManyPoints) {
				t.Fatalf("error %v is none of the parser's sentinels", err)
			}
			return
		}
		if _, err := points.Encode(nil, pts, "host", "h", time.Unix(0, 0)); err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", body, err)
		}
	})
}
