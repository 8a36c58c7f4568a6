package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/forward"
	gatewaypkg "github.com/metricgate/metricgate/pkg/gateway"
	"github.com/metricgate/metricgate/pkg/influx"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/server"
	"github.com/metricgate/metricgate/pkg/spool"
)

// gateway is a running gateway on loopback, built as the apiserver builds
// it: requests go through authentication, parsing and the spool, and the
// forwarder delivers them to a real InfluxDB.
type gateway struct {
	url    string // the ingest listener
	admin  string // the admin listener
	gw     *gatewaypkg.Gateway
	keys   *keystore.Store
	db     *testenv.DB
	dbPath string
	logs   *testenv.Buffer
}

var fixedNow = time.Unix(0, 1700000000123456789)

// testConfig is the apiserver's configuration for a gateway of the test's
// own: its key store and spool in temp dirs, a fresh database on the test
// InfluxDB, and the clock stopped at fixedNow. The forwarder and usage
// flushing wait milliseconds rather than a second, so tests are quick.
func testConfig(t *testing.T, db *testenv.DB) gatewaypkg.Config {
	dir := t.TempDir()
	cfg := gatewaypkg.Config{
		DB:           filepath.Join(dir, "keys.db"),
		KeyPoll:      20 * time.Millisecond,
		Influx:       influx.Config{URL: db.URL, Bucket: db.Name},
		Server:       server.DefaultConfig(),
		Spool:        spool.Options{Dir: filepath.Join(dir, "spool"), Sync: spool.SyncAlways, MaxBytes: 64 << 20},
		Forward:      forward.Options{BatchPoints: 5000, BatchWait: 5 * time.Millisecond, Workers: 4, MaxBackoff: 200 * time.Millisecond},
		PaceBatches:  8,
		UsageFlush:   10 * time.Millisecond,
		DrainTimeout: 5 * time.Second,
	}
	cfg.Server.Now = func() time.Time { return fixedNow }
	return cfg
}

// startGateway starts a gateway with testConfig, its request handling
// changed by mutate if set, and stops it at the end of the test.
func startGateway(t *testing.T, mutate func(*server.Config)) *gateway {
	t.Helper()
	return startGatewayWith(t, func(cfg *gatewaypkg.Config) {
		if mutate != nil {
			mutate(&cfg.Server)
		}
	})
}

// startGatewayWith starts a gateway with testConfig, changed by mutate, and
// stops it at the end of the test.
func startGatewayWith(t *testing.T, mutate func(*gatewaypkg.Config)) *gateway {
	t.Helper()
	g := &gateway{db: testenv.InfluxDB(t), logs: &testenv.Buffer{}}
	cfg := testConfig(t, g.db)
	mutate(&cfg)
	g.dbPath = cfg.DB
	var err error
	g.gw, err = gatewaypkg.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(g.logs, nil)), g.logs)
	if err != nil {
		t.Fatal(err)
	}
	g.keys = g.gw.Keys()
	srv, admin := httptest.NewServer(g.gw.Handler()), httptest.NewServer(g.gw.AdminHandler())
	t.Cleanup(func() {
		srv.Close()
		admin.Close()
		if err := g.gw.Close(); err != nil {
			t.Errorf("closing the gateway: %v", err)
		}
	})
	g.url, g.admin = srv.URL, admin.URL
	return g
}

// delivered waits until InfluxDB has confirmed every point the gateway
// accepted, so that what a query finds is what the gateway will deliver.
func (g *gateway) delivered(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); g.gw.Backlog() > 0; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("InfluxDB has not confirmed %d accepted points after 10 s", g.gw.Backlog())
		}
	}
}

// query runs q on the gateway's database once every accepted point is there.
func (g *gateway) query(t *testing.T, q string) []testenv.Series {
	t.Helper()
	g.delivered(t)
	return g.db.Query(t, q)
}

// count returns the points of field in measurement once every accepted
// point is in InfluxDB.
func (g *gateway) count(t *testing.T, measurement, field string) int64 {
	t.Helper()
	g.delivered(t)
	return g.db.Count(t, measurement, field)
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

// do sends a request to the gateway's ingest listener. headers are name
// and value pairs, set in order; an empty value deletes the header.
func (g *gateway) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	return request(t, method, g.url+path, body, headers...)
}

// request sends a request to url; headers as for do.
func request(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
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
	s := g.query(t, `SELECT "os_updates", "host" FROM "custom_metrics"`)
	if len(s) != 1 || len(s[0].Values) != 1 {
		t.Fatalf("got series %+v, want one point", s)
	}
	row := s[0].Values[0]
	if fmt.Sprint(row[0]) != "1699786600000000000" || fmt.Sprint(row[1]) != "5" || row[2] != "127.0.0.1" {
		t.Errorf("got row %v, want [1699786600000000000 5 127.0.0.1]", row)
	}
	assertFieldType(t, g, "custom_metrics", "os_updates", "integer")
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
	assertFieldType(t, g, "custom_metrics", "load", "float")
	assertFieldType(t, g, "custom_metrics", "up", "boolean")
	assertFieldType(t, g, "custom_metrics", "state", "string")
	assertFieldType(t, g, "disk", "free", "integer")

	s := g.query(t, `SELECT "free", "host", "mount" FROM "disk"`)
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
		if n := g.count(t, "custom_metrics", field); n != 5000 {
			t.Errorf("%s: got %d points in InfluxDB, want 5000", field, n)
		}
	}
}

// TestSubmitBodyMemory holds one large body half-sent and checks that a
// second one, with no room left in the gateway's body memory, gets a 503
// naming the reason, and goes in once the first is answered.
func TestSubmitBodyMemory(t *testing.T) {
	g := startGateway(t, func(c *server.Config) {
		c.BodyMemory = 256 << 10
		c.BodyMemoryWait = 100 * time.Millisecond
	})
	_, key := g.key(t, "127.0.0.1")
	batch := func(field string) string { return jsonBatch(field, 150<<10) }

	slow := batch("slow")
	pw, slowDone := slowSubmit(t, g, key, len(slow))
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
	if a := <-slowDone; a.status != 200 {
		t.Fatalf("the slow body: got %d %s (%v), want 200", a.status, a.body, a.err)
	}
	if r := g.submit(t, key, batch("after")); r.status != 200 {
		t.Fatalf("once the slow body was answered: got %d %s, want 200", r.status, r.body)
	}
	if n := g.count(t, "custom_metrics", "slow"); n == 0 {
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
	if n := g.count(t, "custom_metrics", "zipped"); n != 1 {
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
	// Each refusal has its reason in its request's line above; the audit
	// line is written once a minute per address, counting the others.
	if n := strings.Count(g.logs.String(), `"msg":"audit: authentication failed"`); n != 1 {
		t.Errorf("got %d audit lines for %d failed authentications from one address in a minute, want 1", n, len(tests))
	}
	if got, want := metricValue(t, g, "metricgate_auth_failure_logs_suppressed_total"), float64(len(tests)-1); got != want {
		t.Errorf("metricgate_auth_failure_logs_suppressed_total = %v, want %v", got, want)
	}
	g.submit(t, good, body)
	for _, k := range []string{good, revokedPlain, otherPlain} {
		if strings.Contains(g.logs.String(), k) {
			t.Fatalf("the log contains a plaintext key")
		}
	}
	if n := g.count(t, "custom_metrics", "x"); n != 1 {
		t.Errorf("got %d points stored, want only the authenticated one", n)
	}
}

// TestSubmitRejectsBadInput sends each kind of bad request and checks the
// status, that the error names the problem, and that nothing was written.
func TestSubmitRejectsBadInput(t *testing.T) {
	g := startGateway(t, func(c *server.Config) {
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
	if n := g.count(t, "custom_metrics", "x"); n != 0 {
		t.Errorf("got %d points stored from rejected requests, want 0", n)
	}
}

// TestSubmitTypeConflictDeadLettered sends a point of another type than
// the field holds. A field the gateway has seen is refused at the door
// with 400 naming both types. One it has not (written to InfluxDB by
// someone else) is accepted, refused by InfluxDB, and kept in the
// dead-letter file with InfluxDB's reason and the key that sent it,
// rather than retried forever or holding back what follows; the gateway
// learns the type from InfluxDB's answer and refuses the next such point
// at the door.
func TestSubmitTypeConflictDeadLettered(t *testing.T) {
	spoolDir := ""
	g := startGatewayWith(t, func(cfg *gatewaypkg.Config) { spoolDir = cfg.Spool.Dir })
	k, key := g.key(t, "127.0.0.1")
	if r := g.submit(t, key, `{"field": "y", "value": 1}`); r.status != 200 {
		t.Fatalf("got %d %s, want 200", r.status, r.body)
	}
	r := g.submit(t, key, `{"field": "y", "value": "one"}`)
	if r.status != 400 || !strings.Contains(r.body, `point 0: field \"y\" of measurement \"custom_metrics\" is string, but this bucket holds it as integer`) {
		t.Fatalf("a string for an integer field the gateway saw: got %d %s, want 400 naming the point and both types", r.status, r.body)
	}

	direct := influx.New(influx.Config{URL: g.db.URL, Bucket: g.db.Name})
	defer direct.Close()
	if err := direct.Write(context.Background(), []byte("custom_metrics,host=other z=1i 1\n")); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"field": "z", "value": "one", "timestamp": 2}`, `{"field": "after", "value": 1}`} {
		if r := g.submit(t, key, body); r.status != 200 {
			t.Fatalf("%s: got %d %s, want 200", body, r.status, r.body)
		}
		// One at a time: InfluxDB need not take a batch's lines in order.
		g.delivered(t)
	}
	if n := g.count(t, "custom_metrics", "z"); n != 1 {
		t.Errorf("got %d points of z in InfluxDB, want the one written directly", n)
	}
	if n := g.count(t, "custom_metrics", "after"); n != 1 {
		t.Errorf("got %d points sent after the conflict, want 1", n)
	}
	dead, err := os.ReadFile(filepath.Join(spoolDir, "dead-letter.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var letter forward.DeadLetter
	if err := json.Unmarshal(dead, &letter); err != nil {
		t.Fatalf("dead-letter file %q: %v", dead, err)
	}
	if !strings.Contains(letter.Line, `z="one"`) || !strings.Contains(letter.Reason, "conflict") || letter.KeyID != k.ID || letter.Time.IsZero() {
		t.Errorf("dead letter %+v lacks the refused line, InfluxDB's reason, key %d or the time", letter, k.ID)
	}
	if m := g.do(t, "GET", "/metrics", ""); !strings.Contains(m.body, "\nmetricgate_spool_points_dead_lettered_total 1\n") {
		t.Errorf("/metrics does not count the dead-lettered point")
	}
	r = g.submit(t, key, `{"field": "z", "value": "two"}`)
	if r.status != 400 || !strings.Contains(r.body, "holds it as integer") {
		t.Errorf("after InfluxDB named z's type: got %d %s, want 400 at the door", r.status, r.body)
	}
}

func TestTrustedProxy(t *testing.T) {
	trusted := startGateway(t, func(c *server.Config) {
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

// TestInfluxUnavailable points the gateway at a closed port: points are
// held in the spool while it has room, then the client gets 503 with
// Retry-After naming the full spool, never a false success, and /readyz
// names the writer.
func TestInfluxUnavailable(t *testing.T) {
	g := startDeadInflux(t)
	_, key := g.key(t, "127.0.0.1")
	accepted, r := g.fillSpool(t, func() response { return g.submit(t, key, `{"field": "x", "value": 1}`) })
	want := `{"error":"the gateway's spool is full while InfluxDB catches up, retry later"}`
	if r.status != 503 || r.header.Get("Retry-After") == "" || strings.TrimSpace(r.body) != want {
		t.Errorf("got %d %s Retry-After=%q, want 503 %s with Retry-After", r.status, r.body, r.header.Get("Retry-After"), want)
	}
	if got := g.gw.Backlog(); got != int64(accepted) {
		t.Errorf("the spool holds %d points, want the %d accepted", got, accepted)
	}
	if r := g.do(t, "GET", "/readyz", ""); r.status != 503 || strings.TrimSpace(r.body) != `{"status":"not ready"}` {
		t.Errorf("readyz on the ingest listener = %d %s, want 503 saying only not ready", r.status, r.body)
	}
	r = request(t, "GET", g.admin+"/readyz", "")
	var ready struct {
		Status string
		Checks map[string]string
	}
	json.Unmarshal([]byte(r.body), &ready)
	if r.status != 503 || ready.Checks["keystore"] != "ok" || !strings.Contains(ready.Checks["writer"], "spool full") {
		t.Errorf("readyz on the admin listener = %d %+v, want 503 naming the full spool", r.status, ready)
	}
}

// startDeadInflux starts a gateway whose InfluxDB does not answer, with a
// spool of 4 KiB, which a few dozen points fill.
func startDeadInflux(t *testing.T) *gateway {
	t.Helper()
	dead := "http://" + testenv.FreeAddr(t)
	return startGatewayWith(t, func(cfg *gatewaypkg.Config) {
		cfg.Influx.URL = dead
		cfg.Spool.MaxBytes = 4096
		cfg.DrainTimeout = 10 * time.Millisecond
	})
}

// fillSpool sends until the gateway refuses, and returns how many requests
// it accepted and the refusal. The first request must be accepted.
func (g *gateway) fillSpool(t *testing.T, send func() response) (int, response) {
	t.Helper()
	for accepted := 0; accepted < 1000; accepted++ {
		r := send()
		if r.status/100 != 2 {
			if accepted == 0 {
				t.Fatalf("with the spool empty: got %d %s, want it accepted", r.status, r.body)
			}
			return accepted, r
		}
	}
	t.Fatal("the spool took 1000 requests without filling")
	return 0, response{}
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

func assertFieldType(t *testing.T, g *gateway, measurement, field, want string) {
	t.Helper()
	for _, s := range g.query(t, fmt.Sprintf("SHOW FIELD KEYS FROM %q", measurement)) {
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
