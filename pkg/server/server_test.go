package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/influx"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/server"
	"github.com/metricgate/metricgate/pkg/usage"
)

// gateway is a running gateway on loopback with its real dependencies.
type gateway struct {
	url    string
	keys   *keystore.Store
	db     *testenv.DB
	dbPath string
	logs   *testenv.Buffer
	usage  *usage.Recorder
}

var fixedNow = time.Unix(0, 1700000000123456789)

func startGateway(t *testing.T, mutate func(*server.Config, *influx.Config)) *gateway {
	t.Helper()
	g := &gateway{db: testenv.InfluxDB(t), logs: &testenv.Buffer{}}
	g.dbPath = filepath.Join(t.TempDir(), "keys.db")
	var err error
	g.keys, err = keystore.Open(context.Background(), g.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.keys.Close() })
	cfg := server.DefaultConfig()
	cfg.Now = func() time.Time { return fixedNow }
	cfg.Admin = g.keys
	icfg := influx.Config{URL: g.db.URL, Bucket: g.db.Name}
	if mutate != nil {
		mutate(&cfg, &icfg)
	}
	out := influx.New(icfg)
	t.Cleanup(out.Close)
	log := slog.New(slog.NewJSONHandler(g.logs, nil))
	cfg.AccessLog = server.NewAccessLog(g.logs, false)
	g.usage = usage.NewRecorder(g.keys, log)
	// As in the apiserver: keys answered from a cache that follows changes.
	cache, err := keystore.NewCache(context.Background(), g.keys, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	srv := httptest.NewServer(server.New(log, cfg, cache, out, g.usage))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

func (g *gateway) key(t *testing.T, host string) (keystore.Key, string) {
	t.Helper()
	k, plain, err := g.keys.Generate(context.Background(), keystore.NewKey{Hostname: host})
	if err != nil {
		t.Fatal(err)
	}
	return k, plain
}

type response struct {
	status int
	header http.Header
	body   string
}

// submit posts body to /api/submit as JSON with key (none if empty).
func (g *gateway) submit(t *testing.T, key, body string, headers ...string) response {
	t.Helper()
	return g.do(t, "POST", "/api/submit", body, append([]string{"Content-Type", "application/json", "X-API-Key", key}, headers...)...)
}

// do sends a request to the gateway. headers are name and value pairs, set
// in order; an empty value deletes the header.
func (g *gateway) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

// TestSubmitExample sends the README's curl request and finds the point in
// InfluxDB with the right measurement, host tag, type, value and time.
func TestSubmitExample(t *testing.T) {
	g := startGateway(t, nil)
	_, key := g.key(t, "127.0.0.1")
	r := g.submit(t, key, `{"field": "os_updates", "value": 5, "timestamp": 1699786600000000000}`)
	if r.status != 200 || strings.TrimSpace(r.body) != `{"accepted":1}` {
		t.Fatalf("got %d %s, want 200 {\"accepted\":1}", r.status, r.body)
	}
	s := g.db.Query(t, `SELECT "os_updates", "host" FROM "custom_metrics"`)
	if len(s) != 1 || len(s[0].Values) != 1 {
		t.Fatalf("got series %+v, want one point", s)
	}
	row := s[0].Values[0]
	if fmt.Sprint(row[0]) != "1699786600000000000" || fmt.Sprint(row[1]) != "5" || row[2] != "127.0.0.1" {
		t.Errorf("got row %v, want [1699786600000000000 5 127.0.0.1]", row)
	}
	assertFieldType(t, g.db, "custom_metrics", "os_updates", "integer")
}

func TestSubmitTypesTagsAndBatch(t *testing.T) {
	g := startGateway(t, nil)
	_, key := g.key(t, "127.0.0.1")
	body := `[
		{"field": "load", "value": 0.25, "timestamp": 10},
		{"field": "up", "value": true, "timestamp": 10},
		{"field": "state", "value": "degraded", "timestamp": 10},
		{"measurement": "disk", "field": "free", "value": 42, "tags": {"mount": "/var", "host": "spoofed"}, "timestamp": 20},
		{"measurement": "disk", "field": "free", "value": 43}
	]`
	if r := g.submit(t, key, body); r.status != 200 || strings.TrimSpace(r.body) != `{"accepted":5}` {
		t.Fatalf("got %d %s, want 200 {\"accepted\":5}", r.status, r.body)
	}
	assertFieldType(t, g.db, "custom_metrics", "load", "float")
	assertFieldType(t, g.db, "custom_metrics", "up", "boolean")
	assertFieldType(t, g.db, "custom_metrics", "state", "string")
	assertFieldType(t, g.db, "disk", "free", "integer")

	s := g.db.Query(t, `SELECT "free", "host", "mount" FROM "disk"`)
	if len(s) != 1 || len(s[0].Values) != 2 {
		t.Fatalf("got %+v, want two disk points", s)
	}
	first, second := s[0].Values[0], s[0].Values[1]
	if fmt.Sprint(first) != "[20 42 127.0.0.1 /var]" {
		t.Errorf("got %v, want [20 42 127.0.0.1 /var] (client's host tag replaced)", first)
	}
	if fmt.Sprint(second[0]) != fmt.Sprint(fixedNow.UnixNano()) {
		t.Errorf("point without timestamp stored at %v, want the server's time %d", second[0], fixedNow.UnixNano())
	}
}

// TestSubmitLargeBatch sends batches of the largest size, plain (read into
// a buffer of its declared length) and gzipped (whose declared length is
// not the body's), and finds every point in InfluxDB.
func TestSubmitLargeBatch(t *testing.T) {
	g := startGateway(t, nil)
	_, key := g.key(t, "127.0.0.1")
	batch := func(field string) string {
		var b strings.Builder
		b.WriteString("[")
		for i := range 5000 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"field":%q,"value":%d,"tags":{"shard":"%d"},"timestamp":%d}`, field, i, i%50, 1700000000000000000+i)
		}
		return b.String() + "]"
	}
	plain := batch("plain")
	if len(plain) <= 64<<10 {
		t.Fatalf("the batch is %d bytes; it should be large enough to be read by its declared size", len(plain))
	}
	if r := g.submit(t, key, plain); r.status != 200 || strings.TrimSpace(r.body) != `{"accepted":5000}` {
		t.Fatalf("plain: got %d %s, want 200 {\"accepted\":5000}", r.status, r.body)
	}
	if r := g.submit(t, key, gzipped(t, batch("zipped")), "Content-Encoding", "gzip"); r.status != 200 || strings.TrimSpace(r.body) != `{"accepted":5000}` {
		t.Fatalf("gzip: got %d %s, want 200 {\"accepted\":5000}", r.status, r.body)
	}
	for _, field := range []string{"plain", "zipped"} {
		if n := g.db.Count(t, "custom_metrics", field); n != 5000 {
			t.Errorf("%s: got %d points in InfluxDB, want 5000", field, n)
		}
	}
}

// TestSubmitBodyMemory holds one large body half-sent and checks that a
// second one, with no room left in the gateway's body memory, gets a 503
// naming the reason, and goes in once the first is answered.
func TestSubmitBodyMemory(t *testing.T) {
	g := startGateway(t, func(c *server.Config, _ *influx.Config) {
		c.BodyMemory = 256 << 10
		c.BodyMemoryWait = 100 * time.Millisecond
	})
	_, key := g.key(t, "127.0.0.1")
	batch := func(field string) string {
		var b strings.Builder
		b.WriteString("[")
		for i := 0; b.Len() < 150<<10; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"field":%q,"value":%d,"timestamp":%d}`, field, i, 1700000000000000000+i)
		}
		return b.String() + "]"
	}

	slow := batch("slow")
	pr, pw := io.Pipe()
	// Runs before the gateway's cleanup, which waits for this request.
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	req, err := http.NewRequest("POST", g.url+"/api/submit", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(slow))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	slowDone := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slowDone <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		slowDone <- resp.StatusCode
	}()
	if _, err := io.WriteString(pw, slow[:len(slow)/2]); err != nil {
		t.Fatal(err)
	}

	// The half-sent body holds its room once its request is read; until
	// then the second may still get in.
	var r response
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = g.submit(t, key, batch("second"))
		if r.status == 503 || time.Now().After(deadline) {
			break
		}
	}
	if r.status != 503 || !strings.Contains(r.body, "as many request bodies as its memory allows") || r.header.Get("Retry-After") == "" {
		t.Fatalf("with the body memory taken: got %d %s (Retry-After %q), want 503 naming the memory, with Retry-After", r.status, r.body, r.header.Get("Retry-After"))
	}
	if m := g.do(t, "GET", "/metrics", ""); !strings.Contains(m.body, "\nmetricgate_body_memory_waits_total ") ||
		strings.Contains(m.body, "\nmetricgate_body_memory_waits_total 0\n") {
		t.Errorf("/metrics does not count the wait that ended in 503")
	}

	if _, err := io.WriteString(pw, slow[len(slow)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if status := <-slowDone; status != 200 {
		t.Fatalf("the slow body: got %d, want 200", status)
	}
	if r := g.submit(t, key, batch("after")); r.status != 200 {
		t.Fatalf("once the slow body was answered: got %d %s, want 200", r.status, r.body)
	}
	if n := g.db.Count(t, "custom_metrics", "slow"); n == 0 {
		t.Errorf("the slow body's points are not in InfluxDB")
	}
}

func TestSubmitGzip(t *testing.T) {
	g := startGateway(t, nil)
	_, key := g.key(t, "127.0.0.1")
	body := gzipped(t, `{"field": "zipped", "value": 1, "timestamp": 5}`)
	if r := g.submit(t, key, body, "Content-Encoding", "gzip"); r.status != 200 {
		t.Fatalf("got %d %s, want 200", r.status, r.body)
	}
	if n := g.db.Count(t, "custom_metrics", "zipped"); n != 1 {
		t.Errorf("got %d points, want 1", n)
	}
}

// TestSubmitAuthFailures checks that every failure gets the same 401 body
// while the log names the reason and key id, never the key.
func TestSubmitAuthFailures(t *testing.T) {
	g := startGateway(t, nil)
	_, good := g.key(t, "127.0.0.1")
	revoked, revokedPlain := g.key(t, "127.0.0.1")
	if _, err := g.keys.Revoke(context.Background(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	other, otherPlain := g.key(t, "192.0.2.10")
	body := `{"field": "x", "value": 1}`
	tests := []struct {
		name, key, reason string
		keyID             int64
	}{
		{"NoKey", "", "no API key", 0},
		{"Unknown", "3b241101-e2bb-4255-8caf-4136c566a962", "unknown key", 0},
		{"Garbage", "not-a-key", "unknown key", 0},
		{"Revoked", revokedPlain, "key revoked", revoked.ID},
		{"HostMismatch", otherPlain, "does not match", other.ID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.submit(t, tt.key, body)
			if r.status != 401 || strings.TrimSpace(r.body) != `{"error":"Unauthorized"}` {
				t.Fatalf("got %d %s, want 401 {\"error\":\"Unauthorized\"}", r.status, r.body)
			}
			line := lastLogLine(t, g.logs)
			if !strings.Contains(fmt.Sprint(line["error"]), tt.reason) {
				t.Errorf("log error %q does not give the reason %q", line["error"], tt.reason)
			}
			if tt.keyID != 0 && fmt.Sprint(line["key_id"]) != fmt.Sprint(tt.keyID) {
				t.Errorf("log key_id = %v, want %d", line["key_id"], tt.keyID)
			}
		})
	}
	if n := strings.Count(g.logs.String(), `"msg":"audit: authentication failed"`); n != len(tests) {
		t.Errorf("got %d audit lines for failed authentications, want %d", n, len(tests))
	}
	g.submit(t, good, body)
	for _, k := range []string{good, revokedPlain, otherPlain} {
		if strings.Contains(g.logs.String(), k) {
			t.Fatalf("the log contains a plaintext key")
		}
	}
	if n := g.db.Count(t, "custom_metrics", "x"); n != 1 {
		t.Errorf("got %d points stored, want only the authenticated one", n)
	}
}

// TestSubmitRejectsBadInput sends each kind of bad request and checks the
// status, that the error names the problem, and that nothing was written.
func TestSubmitRejectsBadInput(t *testing.T) {
	g := startGateway(t, func(c *server.Config, _ *influx.Config) {
		c.MaxBody = 4096
		c.MaxPoints = 3
	})
	_, key := g.key(t, "127.0.0.1")
	bomb := gzipped(t, `{"field":"x","value":"`+strings.Repeat("a", 1<<20)+`"}`)
	tests := []struct {
		name, body string
		headers    []string
		status     int
		mention    string
	}{
		{"Malformed", `{"field": "x", "value": `, nil, 400, "ends"},
		{"NotJSON", `field=x`, nil, 400, "JSON"},
		{"MissingField", `{"value": 1}`, nil, 400, `point 0: "field" is required`},
		{"MissingValue", `{"field": "x"}`, nil, 400, `"value" is required`},
		{"WrongValueType", `{"field": "x", "value": [1]}`, nil, 400, `"value" must be a number`},
		{"WrongFieldType", `{"field": 1, "value": 1}`, nil, 400, `"field" must be a string`},
		{"InvalidMeasurement", `{"measurement": "_m", "field": "x", "value": 1}`, nil, 400, "measurement"},
		{"InvalidTag", `{"field": "x", "value": 1, "tags": {"": "v"}}`, nil, 400, "tag key"},
		{"RepeatedTag", `{"field": "x", "value": 1, "tags": {"a": "1", "a": "2"}}`, nil, 400, `tag key "a" appears twice`},
		{"FloatTimestamp", `{"field": "x", "value": 1, "timestamp": 1.5}`, nil, 400, "timestamp"},
		{"SecondPointBad", `[{"field": "x", "value": 1}, {"field": "x", "value": null}]`, nil, 400, "point 1"},
		{"EmptyBatch", `[]`, nil, 400, "no points"},
		{"OversizeBatch", `[{"field":"x","value":1},{"field":"x","value":1},{"field":"x","value":1},{"field":"x","value":1}]`, nil, 413, "at most 3 points"},
		{"BodyTooLarge", `{"field": "x", "value": "` + strings.Repeat("a", 5000) + `"}`, nil, 413, "larger than 4096 bytes"},
		{"GzipBomb", bomb, []string{"Content-Encoding", "gzip"}, 413, "larger than 4096 bytes"},
		{"BadGzip", `not gzip`, []string{"Content-Encoding", "gzip"}, 400, "gzip"},
		{"UnknownEncoding", `{}`, []string{"Content-Encoding", "br"}, 415, "Content-Encoding"},
		{"ContentType", `field=x&value=1`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.submit(t, key, tt.body, tt.headers...)
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(r.body), &e); err != nil {
				t.Fatalf("body %q is not a JSON error: %v", r.body, err)
			}
			if r.status != tt.status || !strings.Contains(e.Error, tt.mention) {
				t.Errorf("got %d %q, want %d mentioning %q", r.status, e.Error, tt.status, tt.mention)
			}
		})
	}
	if n := g.db.Count(t, "custom_metrics", "x"); n != 0 {
		t.Errorf("got %d points stored from rejected requests, want 0", n)
	}
	// A point InfluxDB refuses (a field type conflict) is a client error.
	if r := g.submit(t, key, `{"field": "y", "value": 1}`); r.status != 200 {
		t.Fatalf("got %d %s, want 200", r.status, r.body)
	}
	if r := g.submit(t, key, `{"field": "y", "value": "one"}`); r.status != 400 || !strings.Contains(r.body, "conflict") {
		t.Errorf("type conflict: got %d %s, want 400 naming the conflict", r.status, r.body)
	}
}

func TestTrustedProxy(t *testing.T) {
	trusted := startGateway(t, func(c *server.Config, _ *influx.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	_, key := trusted.key(t, "192.0.2.7")
	body := `{"field": "x", "value": 1}`
	if r := trusted.submit(t, key, body, "X-Forwarded-For", "198.51.100.1, 192.0.2.7"); r.status != 200 {
		t.Errorf("via trusted proxy: got %d %s, want 200", r.status, r.body)
	}
	if r := trusted.submit(t, key, body, "X-Forwarded-For", "192.0.2.7, 198.51.100.1"); r.status != 401 {
		t.Errorf("spoofed left-most hop: got %d, want 401", r.status)
	}
	untrusted := startGateway(t, nil)
	_, key2 := untrusted.key(t, "192.0.2.7")
	if r := untrusted.submit(t, key2, body, "X-Forwarded-For", "192.0.2.7"); r.status != 401 {
		t.Errorf("X-Forwarded-For from an untrusted peer: got %d, want 401", r.status)
	}
}

// TestRevokeWhileRunning revokes a key through a second handle on the same
// database file, as keyctl does, and checks the next request is refused.
func TestRevokeWhileRunning(t *testing.T) {
	g := startGateway(t, nil)
	k, key := g.key(t, "127.0.0.1")
	body := `{"field": "x", "value": 1}`
	if r := g.submit(t, key, body); r.status != 200 {
		t.Fatalf("got %d %s, want 200", r.status, r.body)
	}
	admin, err := keystore.Open(context.Background(), g.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Revoke(context.Background(), k.ID); err != nil {
		t.Fatal(err)
	}
	// The key cache follows changes to the file within its poll interval.
	deadline := time.Now().Add(time.Second)
	for r := g.submit(t, key, body); r.status != 401; r = g.submit(t, key, body) {
		if time.Now().After(deadline) {
			t.Fatalf("1s after revoke: got %d, want 401", r.status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, fresh, err := admin.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if r := g.submit(t, fresh, body); r.status != 200 {
		t.Errorf("key generated while running: got %d, want 200", r.status)
	}
}

// TestInfluxUnavailable points the gateway at a closed port: the client must
// get 503 with Retry-After, never a false success.
func TestInfluxUnavailable(t *testing.T) {
	dead := "http://" + testenv.FreeAddr(t)
	g := startGateway(t, func(_ *server.Config, ic *influx.Config) { ic.URL = dead })
	_, key := g.key(t, "127.0.0.1")
	r := g.submit(t, key, `{"field": "x", "value": 1}`)
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("got %d Retry-After=%q, want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	resp, err := http.Get(g.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready struct {
		Status string
		Checks map[string]string
	}
	json.NewDecoder(resp.Body).Decode(&ready)
	if resp.StatusCode != 503 || ready.Checks["keystore"] != "ok" || ready.Checks["writer"] == "ok" {
		t.Errorf("readyz = %d %+v, want 503 naming the writer", resp.StatusCode, ready)
	}
}

func TestHealth(t *testing.T) {
	g := startGateway(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(g.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s = %d %s, want 200", path, resp.StatusCode, b)
		}
	}
}

func assertFieldType(t *testing.T, db *testenv.DB, measurement, field, want string) {
	t.Helper()
	for _, s := range db.Query(t, fmt.Sprintf("SHOW FIELD KEYS FROM %q", measurement)) {
		for _, v := range s.Values {
			if v[0] == field {
				if v[1] != want {
					t.Errorf("field %s.%s has type %v, want %s", measurement, field, v[1], want)
				}
				return
			}
		}
	}
	t.Errorf("field %s.%s not found", measurement, field)
}

func lastLogLine(t *testing.T, logs *testenv.Buffer) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("log line %q: %v", lines[len(lines)-1], err)
	}
	return m
}
