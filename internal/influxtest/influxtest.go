// Package influxtest gives tests their own database on the real InfluxDB
// that scripts/test.sh starts and names in METRICGATE_INFLUX_URL.
package influxtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// DB is one database on the test InfluxDB.
type DB struct {
	URL  string // the server's base URL
	Name string // the database, usable as the bucket
}

var counter atomic.Int64

// New creates a fresh database for the test. Without a server it fails the
// test when CI is set, and skips it otherwise.
func New(t testing.TB) *DB {
	t.Helper()
	base := os.Getenv("METRICGATE_INFLUX_URL")
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("METRICGATE_INFLUX_URL is not set: run the tests with scripts/test.sh, which starts InfluxDB")
		}
		t.Skip("METRICGATE_INFLUX_URL is not set: run scripts/test.sh to start InfluxDB for this test")
	}
	db := &DB{URL: base, Name: fmt.Sprintf("t%d_%d", time.Now().UnixNano(), counter.Add(1))}
	db.Query(t, fmt.Sprintf("CREATE DATABASE %q", db.Name))
	t.Cleanup(func() { db.Query(t, fmt.Sprintf("DROP DATABASE %q", db.Name)) })
	return db
}

// Series is one series of a query result.
type Series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// Query runs an InfluxQL statement against the database, with nanosecond
// timestamps and integers kept exact, and returns the series of the first
// result.
func (db *DB) Query(t testing.TB, q string) []Series {
	t.Helper()
	form := url.Values{"q": {q}, "db": {db.Name}, "epoch": {"ns"}}
	resp, err := http.Post(db.URL+"/query", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("InfluxDB query %q: %v", q, err)
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Series []Series `json:"series"`
			Error  string   `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("InfluxDB query %q: decode: %v", q, err)
	}
	if out.Error != "" {
		t.Fatalf("InfluxDB query %q: %s", q, out.Error)
	}
	if len(out.Results) == 0 {
		return nil
	}
	if out.Results[0].Error != "" {
		t.Fatalf("InfluxDB query %q: %s", q, out.Results[0].Error)
	}
	return out.Results[0].Series
}

// Count returns the number of points of field in measurement.
func (db *DB) Count(t testing.TB, measurement, field string) int64 {
	t.Helper()
	s := db.Query(t, fmt.Sprintf("SELECT count(%q) FROM %q", field, measurement))
	if len(s) == 0 || len(s[0].Values) == 0 {
		return 0
	}
	n, err := s[0].Values[0][1].(json.Number).Int64()
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

// WaitCount polls until field in measurement has want points or timeout
// passes, and returns the last count: points go through the spool, so they
// arrive shortly after the gateway answers.
func (db *DB) WaitCount(t testing.TB, measurement, field string, want int64, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := db.Count(t, measurement, field)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}
