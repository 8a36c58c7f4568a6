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
	var j points.JSONScanner
	for i, body := range bodies {
		if err := sameAsFresh(&j, body); err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
	}
}

// FuzzJSONScanner scans two bodies with one JSONScanner and checks the
// second against a fresh parse: nothing of the first may show in it.
func FuzzJSONScanner(f *testing.F) {
	f.Add(`{"field":"a","value":1,"tags":{"k":"v"}}`, `{"field":"b","value":2.5}`)
	f.Add(`[{"field":"a","value":1},{"field":"a","value":"s","bogus":1}]`, `[{"measurement":"m","field":"a","value":true,"tags":{"z":"1","a":"2"}}]`)
	f.Add(`{"field":"x","value":1,"timestamp":1}`, `{"field":"x","value":1,"tags":{"host":"h"}}`)
	f.Fuzz(func(t *testing.T, first, second string) {
		var j points.JSONScanner
		if err := sameAsFresh(&j, first); err != nil {
			t.Fatalf("first body: %v", err)
		}
		if err := sameAsFresh(&j, second); err != nil {
			t.Fatalf("second body: %v", err)
		}
	})
}

// sameAsFresh scans body with j and returns an error unless the answer is
// ParseJSON's and EncodeLines' for the same body.
func sameAsFresh(j *points.JSONScanner, body string) error {
	now := time.Unix(1699786600, 0)
	opts := points.Options{DefaultMeasurement: "custom_metrics", HostTag: "host", Limits: points.Limits{MaxTags: 8, MaxFields: 8}}
	got, gotErr := j.Scan(strings.NewReader(body), opts, "web-1", now)
	var want points.Lines
	pts, wantErr := points.ParseJSON(strings.NewReader(body), opts)
	if wantErr == nil {
		wantErr = points.EncodeLines(&want, pts, "host", "web-1", now)
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
