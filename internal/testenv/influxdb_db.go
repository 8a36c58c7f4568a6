package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// DB is one database on an InfluxDB.
type DB struct {
	URL  string // the server's base URL
	Name string // the database, usable as the bucket
}

// Series is one series of a query result.
type Series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// Query runs an InfluxQL statement against the database, with nanosecond
// timestamps and integers kept exact (as json.Number), and returns the
// series of the first result.
func (db *DB) Query(t testing.TB, q string) []Series {
	t.Helper()
	s, err := db.query(q)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (db *DB) query(q string) ([]Series, error) {
	form := url.Values{"q": {q}, "db": {db.Name}, "epoch": {"ns"}}
	resp, err := http.Post(db.URL+"/query", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("InfluxDB query %q: %w", q, err)
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
		return nil, fmt.Errorf("InfluxDB query %q: decode: %w", q, err)
	}
	if out.Error == "" && len(out.Results) > 0 {
		out.Error = out.Results[0].Error
	}
	if out.Error != "" {
		return nil, fmt.Errorf("InfluxDB query %q: %s", q, out.Error)
	}
	if len(out.Results) == 0 {
		return nil, nil
	}
	return out.Results[0].Series, nil
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
