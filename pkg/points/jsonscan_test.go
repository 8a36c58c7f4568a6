package points_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/points"
)

// TestJSONScannerReuse runs one JSONScanner over bodies one after another,
// as a gateway's requests reuse it, and checks each against a fresh
// ParseJSON and EncodeLines: what a body before left in the scanner (its
// names, its points, a refusal halfway, a batch larger than what is kept)
// must never show in the next.
func TestJSONScannerReuse(t *testing.T) {
	var big strings.Builder
	big.WriteString("[")
	for i := range 300 {
		if i > 0 {
			big.WriteString(",")
		}
		fmt.Fprintf(&big, `{"measurement":"m%d","field":"f%d","value":%d,"tags":{"t":"%d","u":"x"}}`, i%3, i%5, i, i)
	}
	big.WriteString("]")
	bodies := []string{
		`{"field":"os_updates","value":5,"timestamp":1699786600000000000}`,
		`{"field":"os_updates","value":6}`,
		`{"field":"load","value":0.5,"tags":{"rack":"r1","host":"spoofed"}}`,
		`[{"measurement":"cpu","field":"idle","value":90,"tags":{"cpu":"0"}},{"measurement":"cpu","field":"idle","value":"text"}]`,
		`[{"field":"a","value":1},{"field":"a","value":1,"bogus":2}]`,
		big.String(),
		`{"field":"os_updates","value":true,"tags":{"b":"2","a":"1"}}`,
		`{"field":"","value":1}`,
		`[{"field":"x","value":1,"tags":{"k":"v"}},{"field":"y","value":2,"tags":{"k":"w","j":"z"}}]`,
		`{"field":"os_updates","value":5,"timestamp":1699786600000000000}`,
	}
	opts := points.Options{DefaultMeasurement: "custom_metrics", HostTag: "host", Limits: points.Limits{MaxTags: 8, MaxFields: 8}}
	var j points.JSONScanner
	for i, body := range bodies {
		if err := sameAsFresh(&j, body, opts, "web-1"); err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
	}
}

// TestJSONScannerPlain checks which bodies the plain-object path answers,
// and that its answers are the whole parse's, under options that each
// refuse one of them: the path must leave those to the whole parse.
func TestJSONScannerPlain(t *testing.T) {
	now := time.Unix(1699786600, 0)
	base := points.Options{DefaultMeasurement: "custom_metrics", HostTag: "host", Now: now}
	window := base
	window.Limits = points.Limits{MaxFuture: time.Hour, MaxPast: time.Hour}
	short := base
	short.Limits.MaxNameLen = 4
	oddDefault := base
	oddDefault.DefaultMeasurement = "custom metrics"
	fewPoints := base
	fewPoints.MaxPoints = 1
	for _, tt := range []struct {
		body  string
		opts  points.Options
		host  string
		plain bool
	}{
		{`{"field": "os_updates", "value": 5, "timestamp": 1699786600000000000}`, base, "web-1", true},
		{` {"value":-0.5e-3,"field":"load","measurement":"sys"} `, base, "10.0.0.1", true},
		{`{"field":"up","value":true}`, base, "::1", true},
		{`{"field":"up","value":false,"timestamp":-5}`, base, "web-1", true},
		{`{"field":"n","value":-9223372036854775808}`, base, "web-1", true},
		{`{"field":"n","value":1.0}`, base, "web-1", true},
		{`{"measurement":"time","field":"n","value":1}`, base, "web-1", true},
		{`{"field":"os_updates","value":5,"timestamp":1699786600000000000}`, window, "web-1", true},
		{`{"field":"os_updates","value":5,"timestamp":1699796600000000000}`, window, "web-1", false}, // ahead of the window
		{`{"field":"os_updates","value":5}`, short, "web-1", false},                                  // field too long
		{`{"field":"n","value":1}`, oddDefault, "web-1", false},                                      // default needs an escape
		{`{"field":"n","value":1}`, base, "web 1", false},                                            // host needs an escape
		{`{"field":"n","value":1}`, base, "", false},
		{`{"field":"n","value":1,"tags":{"a":"b"}}`, base, "web-1", false},
		{`{"field":"n","value":"text"}`, base, "web-1", false},
		{`{"field":"n","value":null}`, base, "web-1", false},
		{`{"field":"n","value":1,"timestamp":null}`, base, "web-1", false},
		{`{"field":"n","value":1,"timestamp":1.5e18}`, base, "web-1", false},
		{`{"field":"n","value":1,"timestamp":9223372036854775806}`, base, "web-1", true},
		{`{"field":"n","value":1,"timestamp":9223372036854775807}`, base, "web-1", false}, // past what InfluxDB stores
		{`{"field":"n","value":01}`, base, "web-1", false},
		{`{"field":"n","value":1e400}`, base, "web-1", false},
		{`{"field":"n","value":9223372036854775808}`, base, "web-1", false},
		{`{"field":"n","value":1,"field":"m"}`, base, "web-1", false},
		{`{"field":"n","value":1,"bogus":1}`, base, "web-1", false},
		{`{"field":"n\u0041","value":1}`, base, "web-1", false},
		{`{"field":"_n","value":1}`, base, "web-1", false},
		{`{"field":"time","value":1}`, base, "web-1", false},
		{`{"field":"host","value":1}`, base, "web-1", false},
		{`{"field":"n"}`, base, "web-1", false},
		{`{"field":"n","value":1}x`, base, "web-1", false},
		{`{"field":"n","value":1,}`, base, "web-1", false},
		{`[{"field":"n","value":1}]`, base, "web-1", true},
		{` [ {"field":"a","value":1} , {"measurement":"m","field":"b","value":2.5,"timestamp":5},{"field":"a","value":true}] `, base, "web-1", true},
		{`[{"field":"a","value":1},{"field":"a","value":2}]`, window, "web-1", true},
		{`[]`, base, "web-1", false},
		{`[{"field":"a","value":1},]`, base, "web-1", false},
		{`[{"field":"a","value":1}`, base, "web-1", false},
		{`[{"field":"a","value":1}]]`, base, "web-1", false},
		{`[[{"field":"a","value":1}]]`, base, "web-1", false},
		{`[{"field":"a","value":1},{"field":"b","value":"s"}]`, base, "web-1", false},
		{`[{"field":"a","value":1},{"field":"_b","value":2}]`, base, "web-1", false},
		{`[{"field":"a","value":1},{"field":"b","value":2,"timestamp":1699796600000000000}]`, window, "web-1", false},
		{`[{"field":"a","value":1},{"field":"b","value":2}]`, fewPoints, "web-1", false},                           // more than MaxPoints
		{`[` + strings.Repeat(`{"field":"a","value":1},`, 200) + `{"field":"a","value":1}]`, base, "web-1", false}, // over 4 KiB
	} {
		var j points.JSONScanner
		if got := j.Plain(tt.body, tt.opts, tt.host, now); got != tt.plain {
			t.Errorf("%s (host %q): plain path %v, want %v", tt.body, tt.host, got, tt.plain)
		}
		if err := sameAsFresh(&j, tt.body, tt.opts, tt.host); err != nil {
			t.Errorf("%s (host %q): %v", tt.body, tt.host, err)
		}
	}
}

// FuzzJSONScanner scans two bodies with one JSONScanner and checks the
// second against a fresh parse: nothing of the first may show in it, and
// the plain-object path must answer as the whole parse does, under a
// host, a name length cap and a time window of the fuzzer's choosing.
func FuzzJSONScanner(f *testing.F) {
	f.Add(`{"field":"a","value":1,"tags":{"k":"v"}}`, `{"field":"b","value":2.5}`, "web-1", 0, false)
	f.Add(`[{"field":"a","value":1},{"field":"a","value":"s","bogus":1}]`, `[{"measurement":"m","field":"a","value":true,"tags":{"z":"1","a":"2"}}]`, "web-1", 0, false)
	f.Add(`{"field":"x","value":1,"timestamp":1}`, `{"field":"x","value":1,"tags":{"host":"h"}}`, "web-1", 0, true)
	f.Add(`{"field":"x","value":1}`, `{"measurement":"m","field":"os_updates","value":-1.5E+2,"timestamp":1699786600000000000}`, "10.1.2.3", 8, true)
	f.Add(`{"field":"x","value":1}`, ` { "value" : true , "field" : "a:b/c.d" } `, "::1", 3, false)
	f.Add(`[{"field":"x","value":1},{"field":"y","value":2}]`, `[{"field":"x","value":1.5,"timestamp":1699786600000000000},{"measurement":"m","field":"x","value":false}]`, "web-1", 0, true)
	f.Fuzz(func(t *testing.T, first, second, host string, maxName int, window bool) {
		now := time.Unix(1699786600, 0)
		opts := points.Options{DefaultMeasurement: "custom_metrics", HostTag: "host", Now: now,
			Limits: points.Limits{MaxTags: 8, MaxFields: 8, MaxNameLen: maxName % 300}}
		if window {
			opts.Limits.MaxFuture, opts.Limits.MaxPast = time.Minute, time.Hour
		}
		var j points.JSONScanner
		if err := sameAsFresh(&j, first, opts, host); err != nil {
			t.Fatalf("first body: %v", err)
		}
		if err := sameAsFresh(&j, second, opts, host); err != nil {
			t.Fatalf("second body: %v", err)
		}
	})
}

// sameAsFresh scans body with j, for host, and returns an error unless
// the answer is ParseJSON's and EncodeLines' for the same body.
func sameAsFresh(j *points.JSONScanner, body string, opts points.Options, host string) error {
	now := time.Unix(1699786600, 0)
	got, gotErr := j.Scan(strings.NewReader(body), opts, host, now)
	var want points.Lines
	pts, wantErr := points.ParseJSON(strings.NewReader(body), opts)
	if wantErr == nil {
		wantErr = points.EncodeLines(&want, pts, opts.HostTag, host, now)
	}
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		return fmt.Errorf("error %v, want %v", gotErr, wantErr)
	}
	if wantErr != nil {
		return nil
	}
	if string(got.Data) != string(want.Data) || got.Points != want.Points || got.Values != want.Values ||
		!reflect.DeepEqual(got.Series, want.Series) || !reflect.DeepEqual(got.Measurements, want.Measurements) ||
		!reflect.DeepEqual(got.Fields, want.Fields) {
		return fmt.Errorf("scanned\n%q %d %d %v %v\nwant\n%q %d %d %v %v",
			got.Data, got.Points, got.Values, got.Measurements, got.Fields,
			want.Data, want.Points, want.Values, want.Measurements, want.Fields)
	}
	return nil
}
