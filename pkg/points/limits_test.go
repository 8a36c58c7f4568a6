package points_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/points"
)

// limited are the gateway's default budgets, with a clock.
var limited = points.Options{
	DefaultMeasurement: "custom_metrics",
	MaxPoints:          5000,
	HostTag:            "host",
	Now:                lpNow,
	Limits: points.Limits{
		MaxFields: 256, MaxTags: 64, MaxNameLen: 64, MaxValueLen: 1024,
		MaxFuture: 10 * time.Minute, MaxPast: 24 * time.Hour,
	},
}

// wideLine returns a line of n fields f0=1,f1=1,...
func wideLine(n int) string {
	var b strings.Builder
	b.WriteString("m ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "f%d=1", i)
	}
	return b.String()
}

// TestLimits sends a point past each budget, in JSON and in line protocol,
// and checks the error names the point and the budget; one just inside
// each is accepted.
func TestLimits(t *testing.T) {
	ns := func(t time.Time) int64 { return t.UnixNano() }
	tags := func(n int) string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf("t%d=v", i))
		}
		return strings.Join(s, ",")
	}
	jsonTags := func(n int) string {
		return `{` + strings.ReplaceAll(strings.ReplaceAll(tags(n), "=v", `":"v"`), "t", `"t`) + `}`
	}
	tests := []struct {
		name, body string
		lp         bool
		mention    string // "" when the body is accepted
	}{
		{"130000Fields", "m v=1\n" + wideLine(130000), true, "line 2: a point may have at most 256 fields"},
		{"256Fields", wideLine(256), true, ""},
		{"TooManyTags", "m," + tags(65) + " v=1", true, "line 1: a point may have at most 64 tags"},
		{"64Tags", "m," + tags(64) + " v=1", true, ""},
		{"TooManyTagsJSON", `[{"field":"v","value":1},{"field":"v","value":1,"tags":` + jsonTags(65) + `}]`, false, "point 1: a point may have at most 64 tags"},
		{"LongName", "m " + strings.Repeat("f", 65) + "=1", true, "longer than 64 bytes"},
		{"LongStringValue", `m s="` + strings.Repeat("x", 1025) + `"`, true, "longer than 1024 bytes"},
		{"LongStringValueJSON", `{"field":"s","value":"` + strings.Repeat("x", 1025) + `"}`, false, "longer than 1024 bytes"},
		{"LongTagValue", "m,t=" + strings.Repeat("x", 1025) + " v=1", true, `tag "t" has an invalid value`},
		{"FutureLP", fmt.Sprintf("m v=1 %d\nm v=1 %d", ns(lpNow), ns(lpNow.Add(7*24*time.Hour))), true, "line 2: timestamp 2023-11-21T22:13:20.123456789Z is 168h0m0s ahead of the gateway's clock"},
		{"FutureJSON", fmt.Sprintf(`[{"field":"v","value":1},{"field":"v","value":"x","timestamp":%d}]`, ns(lpNow.Add(11*time.Minute))), false, "point 1: timestamp"},
		{"JustInsideFuture", fmt.Sprintf("m v=1 %d", ns(lpNow.Add(10*time.Minute))), true, ""},
		{"PastLP", fmt.Sprintf("m v=1 %d", ns(lpNow.Add(-25*time.Hour))), true, "behind the gateway's clock"},
		{"PastJSON", `{"field":"v","value":1,"timestamp":1699786600000000000}`, false, "point 0: timestamp 2023-11-12T10:56:40Z is 59h16m40s behind"},
		{"MinInt64JSON", `{"field":"v","value":1,"timestamp":-9223372036854775808}`, false, "outside the range InfluxDB stores"},
		{"HostFieldJSON", `{"field":"host","value":"db-1"}`, false, `field "host" has the name of the tag the gateway sets`},
		{"HostFieldLP", `m host="db-1"`, true, `line 1: field "host" has the name of the tag`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.lp {
				_, err = points.ParseLineProtocol(strings.NewReader(tt.body), time.Nanosecond, limited, lpNow)
			} else {
				_, err = points.ParseJSON(strings.NewReader(tt.body), limited)
			}
			if tt.mention == "" {
				if err != nil {
					t.Fatalf("got %v, want it accepted", err)
				}
				return
			}
			if !errors.Is(err, points.ErrInvalid) || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("got %v, want ErrInvalid mentioning %q", err, tt.mention)
			}
		})
	}
}

// TestLimitsOff checks that zero limits bound nothing but InfluxDB's own
// range: the seed's 2023 example and a point far ahead pass, and the
// default name cap still holds.
func TestLimitsOff(t *testing.T) {
	opts := points.Options{DefaultMeasurement: "m", Now: lpNow}
	for _, body := range []string{
		`{"field":"v","value":1,"timestamp":1699786600000000000}`,
		fmt.Sprintf(`{"field":"v","value":1,"timestamp":%d}`, lpNow.Add(1000*time.Hour).UnixNano()),
		`{"field":"host","value":1}`,
	} {
		if _, err := points.ParseJSON(strings.NewReader(body), opts); err != nil {
			t.Errorf("%s: %v, want it accepted", body, err)
		}
	}
	if _, err := points.ParseLineProtocol(strings.NewReader(wideLine(1000)), time.Nanosecond, opts, lpNow); err != nil {
		t.Errorf("1000 fields without a cap: %v", err)
	}
	long := `{"field":"` + strings.Repeat("f", points.DefaultMaxNameLen+1) + `","value":1}`
	if _, err := points.ParseJSON(strings.NewReader(long), opts); err == nil || !strings.Contains(err.Error(), "longer than 256 bytes") {
		t.Errorf("a field name past the default cap: got %v, want it refused", err)
	}
}

// TestGrow checks that a parse asks for room as its points' memory grows,
// a few times for a large body and never for a small one, and that a
// refusal ends it with the refusal's own error.
func TestGrow(t *testing.T) {
	for _, tc := range []struct {
		name string
		lp   bool
		body []byte
	}{{"JSON", false, batchJSON(5000)}, {"LineProtocol", true, batchLP(5000)}} {
		t.Run(tc.name, func(t *testing.T) {
			parse := func(grow func(int64) error) error {
				opts := points.Options{DefaultMeasurement: "m", MaxPoints: 5000, Grow: grow}
				var err error
				if tc.lp {
					_, err = points.ParseLineProtocol(strings.NewReader(string(tc.body)), time.Nanosecond, opts, lpNow)
				} else {
					_, err = points.ParseJSON(strings.NewReader(string(tc.body)), opts)
				}
				return err
			}
			var calls int
			var held, most int64
			err := parse(func(n int64) error {
				calls++
				held += n
				most = max(most, held)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// 5000 points, fields and tags take at least 5000*(96+48+32) bytes.
			if most < 5000*176 || calls > 40 {
				t.Errorf("asked %d times for at most %d bytes in all, want at least %d in a few requests", calls, most, 5000*176)
			}
			refused := errors.New("no room")
			if err := parse(func(int64) error { return refused }); err != refused {
				t.Errorf("with every request refused: got %v, want the refusal itself", err)
			}
		})
	}
	small := points.Options{DefaultMeasurement: "m", Grow: func(int64) error { t.Error("a one-point body asked for room"); return nil }}
	if _, err := points.ParseJSON(strings.NewReader(`{"field":"v","value":1}`), small); err != nil {
		t.Fatal(err)
	}
}
