package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/server"
)

// post sends body to path (with its query) and returns the answer. headers
// are name, value pairs.
func (g *gateway) post(t *testing.T, path, body string, headers ...string) response {
	t.Helper()
	return g.do(t, "POST", path, body, headers...)
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.String()
}

// TestInfluxClientWritesThroughGateway writes with the official client, as
// an application would to InfluxDB 2.x, with the API key as the token, and
// finds the points in InfluxDB with the key's host and the right types.
func TestInfluxClientWritesThroughGateway(t *testing.T) {
	g := startGateway(t, nil)
	_, key := g.key(t, "127.0.0.1")
	ctx := context.Background()
	tests := []struct {
		name string
		opts *influxdb2.Options
		at   time.Time
	}{
		{"Nanoseconds", influxdb2.DefaultOptions(), time.Unix(1700000000, 123456789)},
		{"SecondsGzip", influxdb2.DefaultOptions().SetPrecision(time.Second).SetUseGZip(true), time.Unix(1700000100, 0)},
		{"Milliseconds", influxdb2.DefaultOptions().SetPrecision(time.Millisecond), time.Unix(1700000200, 5000000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := influxdb2.NewClientWithOptions(g.url, key, tt.opts.SetMaxRetries(0))
			defer client.Close()
			if ok, err := client.Ping(ctx); !ok || err != nil {
				t.Fatalf("Ping: got %v %v, want true", ok, err)
			}
			write := client.WriteAPIBlocking("any-org", "ignored-bucket")
			p := influxdb2.NewPoint("app",
				map[string]string{"host": "spoofed", "region": "eu", "run": tt.name},
				map[string]any{"requests": 42, "load": 0.25, "up": true, "state": "degraded"},
				tt.at)
			if err := write.WritePoint(ctx, p); err != nil {
				t.Fatalf("WritePoint: %v", err)
			}
			if err := write.WriteRecord(ctx, fmt.Sprintf("app,run=%s,region=us requests=7i %d", tt.name, tt.at.UnixNano()/int64(tt.opts.Precision()))); err != nil {
				t.Fatalf("WriteRecord: %v", err)
			}
			for _, tc := range []struct{ region, want string }{
				{"eu", fmt.Sprintf("[%d 42 0.25 true degraded 127.0.0.1]", tt.at.UnixNano())},
				{"us", fmt.Sprintf("[%d 7 <nil> <nil> <nil> 127.0.0.1]", tt.at.UnixNano())},
			} {
				s := g.query(t, fmt.Sprintf(`SELECT "requests", "load", "up", "state", "host" FROM "app" WHERE "run" = '%s' AND "region" = '%s'`, tt.name, tc.region))
				if len(s) != 1 || len(s[0].Values) != 1 {
					t.Fatalf("region %s: got %+v, want one point", tc.region, s)
				}
				if got := fmt.Sprint(s[0].Values[0]); got != tc.want {
					t.Errorf("region %s: got %s, want %s (host tag replaced by the key's host)", tc.region, got, tc.want)
				}
			}
		})
	}
	for field, typ := range map[string]string{"requests": "integer", "load": "float", "up": "boolean", "state": "string"} {
		assertFieldType(t, g, "app", field, typ)
	}
}

// TestInfluxClientErrors checks that the official client reads the
// gateway's errors as InfluxDB's own.
func TestInfluxClientErrors(t *testing.T) {
	g := startGateway(t, nil)
	client := influxdb2.NewClientWithOptions(g.url, "3b241101-e2bb-4255-8caf-4136c566a962", influxdb2.DefaultOptions().SetMaxRetries(0))
	defer client.Close()
	err := client.WriteAPIBlocking("", "b").WriteRecord(context.Background(), "m v=1")
	var herr *influxhttp.Error
	if !errors.As(err, &herr) || herr.StatusCode != 401 || herr.Code != "unauthorized" || herr.Message != "Unauthorized" {
		t.Errorf("got %#v, want a 401 unauthorized with message Unauthorized", err)
	}
}

func TestInfluxV1Write(t *testing.T) {
	g := startGateway(t, nil)
	_, key := g.key(t, "127.0.0.1")
	tests := []struct {
		name, query, body string
		headers           []string
		n                 int // the value of field n, which tells the points apart
		wantTime          int64
	}{
		{"PasswordParam", "?db=x&u=anyone&p=" + key, "v1 n=1i 1700000000000000001", nil, 1, 1700000000000000001},
		{"PasswordParamOnly", "?db=x&p=" + key, "v1 n=2i 1700000000000000002", nil, 2, 1700000000000000002},
		{"BasicAuth", "?db=x", "v1 n=3i 1700000000000000003", []string{"Authorization", basic("telegraf", key)}, 3, 1700000000000000003},
		{"Token", "?db=x", "v1 n=4i 1700000000000000004", []string{"Authorization", "Token " + key}, 4, 1700000000000000004},
		{"TokenUserPassword", "?db=x", "v1 n=5i 1700000000000000005", []string{"Authorization", "Token me:" + key}, 5, 1700000000000000005},
		{"PrecisionS", "?db=x&precision=s&p=" + key, "v1 n=6i 1700000006", nil, 6, 1700000006000000000},
		{"PrecisionMs", "?db=x&precision=ms&p=" + key, "v1 n=7i 1700000007123", nil, 7, 1700000007123000000},
		{"PrecisionU", "?db=x&precision=u&p=" + key, "v1 n=8i 1700000008123456", nil, 8, 1700000008123456000},
		{"PrecisionH", "?db=x&precision=h&p=" + key, "v1 n=9i 472222", nil, 9, 1699999200000000000},
		{"NoTimestampSeconds", "?db=x&precision=s&p=" + key, "v1 n=10i", nil, 10, 1700000000000000000},
		{"Gzip", "?db=x&p=" + key, gzipped(t, "v1 n=11i 1700000000000000011"), []string{"Content-Encoding", "gzip"}, 11, 1700000000000000011},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.post(t, "/write"+tt.query, tt.body, tt.headers...)
			if r.status != 204 || r.body != "" {
				t.Fatalf("got %d %q, want 204 and no body", r.status, r.body)
			}
			if r.header.Get("X-Influxdb-Version") == "" {
				t.Errorf("got no X-Influxdb-Version header, want one")
			}
			s := g.query(t, fmt.Sprintf(`SELECT "n", "host" FROM "v1" WHERE "n" = %d`, tt.n))
			if len(s) != 1 || len(s[0].Values) != 1 {
				t.Fatalf("got %+v, want one point", s)
			}
			if got, want := fmt.Sprint(s[0].Values[0]), fmt.Sprintf("[%d %d 127.0.0.1]", tt.wantTime, tt.n); got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
	if strings.Contains(g.logs.String(), key) {
		t.Errorf("the log contains the key given as p=")
	}
}

// TestInfluxWriteRejectsWhole sends bodies with one bad line among good
// ones: the answer names the line, and nothing of the request is stored.
func TestInfluxWriteRejectsWhole(t *testing.T) {
	g := startGateway(t, func(c *server.Config) {
		c.MaxPoints = 3
		c.MaxBody = 4096
	})
	_, key := g.key(t, "127.0.0.1")
	token := []string{"Authorization", "Token " + key}
	tests := []struct {
		name, path, body string
		headers          []string
		status           int
		want             string // the exact body
	}{
		{"V2BadLine", "/api/v2/write?bucket=b&org=o", "bad v=1i 1\nbad v=2i 2\nbad v=oops 3\n", token, 400,
			`{"code":"invalid","message":"line 3, column 7: field value has unrecognized type"}`},
		{"V1BadLine", "/write?db=d&p=" + key, "bad v=1i 1\n# comment\nbad,host v=2i 2\n", nil, 400,
			`{"error":"line 3, column 5: expected '=' after tag key \"host\", but got ' ' instead"}`},
		{"V2ReservedName", "/api/v2/write?bucket=b", "bad v=1i 1\nbad _v=2i 2\n", token, 400,
			`{"code":"invalid","message":"line 2: field \"_v\" must not start with '_' (reserved by InfluxDB)"}`},
		{"V2TooManyPoints", "/api/v2/write?bucket=b", "bad v=1i 1\nbad v=1i 2\nbad v=1i 3\nbad v=1i 4\n", token, 413,
			`{"code":"request too large","message":"too many points: a batch may hold at most 3 points"}`},
		{"V1BodyTooLarge", "/write?db=d&p=" + key, "bad s=\"" + strings.Repeat("a", 5000) + "\"", nil, 413,
			`{"error":"request body is larger than 4096 bytes"}`},
		{"V2GzipBomb", "/api/v2/write?bucket=b", gzipped(t, "bad s=\""+strings.Repeat("a", 1<<20)+"\""), append([]string{"Content-Encoding", "gzip"}, token...), 413,
			`{"code":"request too large","message":"request body is larger than 4096 bytes"}`},
		{"V2BadPrecision", "/api/v2/write?bucket=b&precision=h", "bad v=1i 1", token, 400,
			`{"code":"invalid","message":"invalid query parameter: invalid precision \"h\" (use ns, us, ms or s)"}`},
		{"V1BadPrecision", "/write?db=d&precision=x&p=" + key, "bad v=1i 1", nil, 400,
			`{"error":"invalid query parameter: invalid precision \"x\" (use n, u, ms, s, m or h)"}`},
		{"V2Empty", "/api/v2/write?bucket=b", "", token, 400,
			`{"code":"invalid","message":"no points submitted: the body holds no lines of line protocol"}`},
		{"V2UnknownEncoding", "/api/v2/write?bucket=b", "bad v=1i 1", append([]string{"Content-Encoding", "br"}, token...), 415,
			`{"code":"unsupported media type","message":"unsupported media type: Content-Encoding \"br\": send gzip or none"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.post(t, tt.path, tt.body, tt.headers...)
			if r.status != tt.status || strings.TrimSpace(r.body) != tt.want {
				t.Errorf("got %d %s, want %d %s", r.status, strings.TrimSpace(r.body), tt.status, tt.want)
			}
		})
	}
	if n := g.count(t, "bad", "v"); n != 0 {
		t.Errorf("got %d points stored from rejected requests, want 0", n)
	}
}

// TestInfluxAuthFailures checks that every failure gets InfluxDB's 401 body
// for the API, while the log keeps the reason.
func TestInfluxAuthFailures(t *testing.T) {
	g := startGateway(t, nil)
	revoked, revokedKey := g.key(t, "127.0.0.1")
	if _, err := g.keys.Revoke(context.Background(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	_, otherHost := g.key(t, "192.0.2.10")
	const unknown = "3b241101-e2bb-4255-8caf-4136c566a962"
	const v2Body = `{"code":"unauthorized","message":"Unauthorized"}`
	const v1Body = `{"error":"authorization failed"}`
	tests := []struct {
		name, path   string
		headers      []string
		want, reason string
	}{
		{"V2NoKey", "/api/v2/write?bucket=b", nil, v2Body, "no API key"},
		{"V2Unknown", "/api/v2/write?bucket=b", []string{"Authorization", "Token " + unknown}, v2Body, "unknown key"},
		{"V2BearerNotToken", "/api/v2/write?bucket=b", []string{"Authorization", "Bearer " + otherHost}, v2Body, "no API key"},
		{"V2Revoked", "/api/v2/write?bucket=b", []string{"Authorization", "Token " + revokedKey}, v2Body, "key revoked"},
		{"V2HostMismatch", "/api/v2/write?bucket=b", []string{"Authorization", "Token " + otherHost}, v2Body, "does not match"},
		{"V1NoKey", "/write?db=d", nil, v1Body, "no API key"},
		{"V1UnknownParam", "/write?db=d&p=" + unknown, nil, v1Body, "unknown key"},
		{"V1UnknownBasic", "/write?db=d", []string{"Authorization", basic("u", unknown)}, v1Body, "unknown key"},
		{"V1HostMismatch", "/write?db=d", []string{"Authorization", basic("u", otherHost)}, v1Body, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.post(t, tt.path, "m v=1", tt.headers...)
			if r.status != 401 || strings.TrimSpace(r.body) != tt.want {
				t.Fatalf("got %d %s, want 401 %s", r.status, r.body, tt.want)
			}
			if line := lastLogLine(t, g.logs); !strings.Contains(fmt.Sprint(line["error"]), tt.reason) {
				t.Errorf("got log error %q, want it to give the reason %q", line["error"], tt.reason)
			}
		})
	}
}

func TestInfluxWriteForbidden(t *testing.T) {
	g := startGateway(t, nil)
	ctx := context.Background()
	_, limited, _ := g.keys.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1", Measurements: []string{"cpu"}})
	_, adminOnly, _ := g.keys.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1", Scopes: []string{"admin"}})
	tests := []struct {
		name, path, body string
		headers          []string
		want             string
	}{
		{"V2Measurement", "/api/v2/write?bucket=b", "cpu v=1i 1\n\ndisk v=1i 1\n", []string{"Authorization", "Token " + limited},
			`{"code":"forbidden","message":"forbidden: line 3: this key may not write measurement \"disk\" (allowed: cpu)"}`},
		{"V1Measurement", "/write?db=d&p=" + limited, "disk v=1i 1", nil,
			`{"error":"forbidden: line 1: this key may not write measurement \"disk\" (allowed: cpu)"}`},
		{"V2Scope", "/api/v2/write?bucket=b", "cpu v=1i 1", []string{"Authorization", "Token " + adminOnly},
			`{"code":"forbidden","message":"forbidden: this key lacks the \"submit\" scope"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.post(t, tt.path, tt.body, tt.headers...)
			if r.status != 403 || strings.TrimSpace(r.body) != tt.want {
				t.Errorf("got %d %s, want 403 %s", r.status, strings.TrimSpace(r.body), tt.want)
			}
		})
	}
	if n := g.count(t, "cpu", "v"); n != 0 {
		t.Errorf("got %d cpu points stored, want 0 (the refused batch wholly refused)", n)
	}
}

func TestInfluxWriteRateLimit(t *testing.T) {
	c := testenv.NewClock(time.Now())
	g := startGateway(t, func(cfg *server.Config) { cfg.Now = c.Now })
	_, key, err := g.keys.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1", Rate: 10, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	token := []string{"Authorization", "Token " + key}
	three := "m v=1i 1\nm v=1i 2\nm v=1i 3\n"
	if r := g.post(t, "/api/v2/write?bucket=b", three, token...); r.status != 204 || r.header.Get("RateLimit-Remaining") != "2" {
		t.Fatalf("3 of 5: got %d %s remaining=%q, want 204 and 2 remaining", r.status, r.body, r.header.Get("RateLimit-Remaining"))
	}
	r := g.post(t, "/api/v2/write?bucket=b", three, token...)
	want := `{"code":"too many requests","message":"rate limit exceeded: this key may send 2 more field values now; retry after 1 s"}`
	if r.status != 429 || strings.TrimSpace(r.body) != want || r.header.Get("Retry-After") != "1" || r.header.Get("RateLimit-Limit") != "5" {
		t.Errorf("3 more: got %d %s Retry-After=%q RateLimit-Limit=%q, want 429 %s, Retry-After 1, limit 5",
			r.status, strings.TrimSpace(r.body), r.header.Get("Retry-After"), r.header.Get("RateLimit-Limit"), want)
	}
	// The limit is the key's, whichever endpoint it uses.
	if r := g.post(t, "/write?db=d&p="+key, "m v=1i 4\nm v=1i 5\nm v=1i 6\n"); r.status != 429 || !strings.Contains(r.body, `"error":"rate limit exceeded`) {
		t.Errorf("same key on /write: got %d %s, want 429", r.status, r.body)
	}
	if n := g.count(t, "m", "v"); n != 3 {
		t.Errorf("got %d points stored, want 3", n)
	}
}

// TestInfluxWriteUnavailable fills the spool of a gateway whose InfluxDB
// is down through the v2 API, and checks the refusal has InfluxDB's shape.
func TestInfluxWriteUnavailable(t *testing.T) {
	g := startDeadInflux(t)
	_, key := g.key(t, "127.0.0.1")
	_, r := g.fillSpool(t, func() response {
		return g.post(t, "/api/v2/write?bucket=b", "m v=1", "Authorization", "Token "+key)
	})
	want := `{"code":"unavailable","message":"the gateway's spool is full while InfluxDB catches up, retry later"}`
	if r.status != 503 || r.header.Get("Retry-After") == "" || strings.TrimSpace(r.body) != want {
		t.Errorf("got %d %s Retry-After=%q, want 503 %s with Retry-After", r.status, strings.TrimSpace(r.body), r.header.Get("Retry-After"), want)
	}
}

func TestPingAndHealth(t *testing.T) {
	g := startGateway(t, nil)
	for _, method := range []string{"GET", "HEAD"} {
		r := g.do(t, method, "/ping", "")
		if r.status != 204 || r.header.Get("X-Influxdb-Version") != "1.8.10" || r.header.Get("X-Influxdb-Build") != "OSS" {
			t.Errorf("%s /ping: got %d version=%q build=%q, want 204 1.8.10 OSS", method, r.status, r.header.Get("X-Influxdb-Version"), r.header.Get("X-Influxdb-Build"))
		}
	}
	r := g.do(t, "GET", "/health", "")
	want := `{"checks":[],"message":"ready for queries and writes","name":"influxdb","status":"pass","version":"1.8.10"}`
	if r.status != 200 || strings.TrimSpace(r.body) != want {
		t.Errorf("GET /health: got %d %s, want 200 %s", r.status, r.body, want)
	}
	client := influxdb2.NewClient(g.url, "")
	defer client.Close()
	h, err := client.Health(context.Background())
	if err != nil || h.Status != "pass" {
		t.Errorf("client Health: got %+v %v, want status pass", h, err)
	}
}

func TestRequestID(t *testing.T) {
	g := startGateway(t, nil)
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name, sent string
		echoed     bool
	}{
		{"Sane", "abc-123_DEF.4", true},
		{"Longest", strings.Repeat("a", 64), true},
		{"None", "", false},
		{"TooLong", strings.Repeat("a", 65), false},
		{"BadCharacters", "id with spaces", false},
		{"LogInjection", `x","level":"ERROR`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.sent != "" {
				headers = []string{"X-Request-Id", tt.sent}
			}
			r := g.do(t, "GET", "/ping", "", headers...)
			got := r.header.Get("X-Request-Id")
			if tt.echoed && got != tt.sent {
				t.Errorf("got X-Request-Id %q, want %q echoed", got, tt.sent)
			}
			if !tt.echoed && !generated.MatchString(got) {
				t.Errorf("got X-Request-Id %q, want 32 generated hex digits", got)
			}
			if line := lastLogLine(t, g.logs); line["request_id"] != got {
				t.Errorf("got request_id %v in the log, want %q", line["request_id"], got)
			}
		})
	}
}

// TestMetrics checks that /metrics exposes the gateway's series and that
// they move with the requests.
func TestMetrics(t *testing.T) {
	c := testenv.NewClock(time.Now())
	g := startGateway(t, func(cfg *server.Config) { cfg.Now = c.Now })
	_, key, err := g.keys.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1", Rate: 1, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	g.post(t, "/api/v2/write?bucket=b", "m v=1", "Authorization", "Token 3b241101-e2bb-4255-8caf-4136c566a962")
	g.post(t, "/write?db=d", "m v=1")
	if r := g.post(t, "/api/v2/write?bucket=b", "m v=1i 1\nm v=2i 2", "Authorization", "Token "+key); r.status != 204 {
		t.Fatalf("got %d %s, want 204", r.status, r.body)
	}
	if r := g.submit(t, key, `[{"field":"x","value":1},{"field":"x","value":2}]`); r.status != 429 {
		t.Fatalf("got %d %s, want 429", r.status, r.body)
	}
	g.do(t, "GET", "/nowhere", "")
	// The forwarder counts a batch once InfluxDB confirmed it.
	g.delivered(t)

	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	lines := map[string]bool{}
	for _, l := range strings.Split(body, "\n") {
		lines[l] = true
	}
	for _, want := range []string{
		`metricgate_auth_failures_total{reason="unknown"} 1`,
		`metricgate_auth_failures_total{reason="no_key"} 1`,
		`metricgate_auth_failures_total{reason="revoked"} 0`,
		`metricgate_points_accepted_total 2`,
		`metricgate_rate_limited_requests_total 1`,
		`metricgate_paced_requests_total 0`,
		`metricgate_body_memory_waits_total 0`,
		`metricgate_http_requests_total{code="401",route="POST /api/v2/write"} 1`,
		`metricgate_http_requests_total{code="401",route="POST /write"} 1`,
		`metricgate_http_requests_total{code="204",route="POST /api/v2/write"} 1`,
		`metricgate_http_requests_total{code="429",route="POST /api/submit"} 1`,
		`metricgate_http_requests_total{code="404",route="unmatched"} 1`,
		`metricgate_http_request_duration_seconds_count{route="POST /api/v2/write"} 2`,
		`metricgate_spool_points_forwarded_total 2`,
		`metricgate_spool_points_dead_lettered_total 0`,
		`metricgate_spool_forward_duration_seconds_count 1`,
		`metricgate_spool_forward_errors_total 0`,
		`metricgate_spool_depth_points 0`,
	} {
		if !lines[want] {
			t.Errorf("got no line %q in /metrics", want)
		}
	}
	for _, want := range []string{"\ngo_goroutines ", "\nprocess_cpu_seconds_total "} {
		if !strings.Contains(body, want) {
			t.Errorf("got no %q series in /metrics, want the Go and process collectors", strings.TrimSpace(want))
		}
	}
	if strings.Contains(body, key) || strings.Contains(body, "key_id") {
		t.Errorf("/metrics mentions a key")
	}
}

// TestSubmitStillJSON checks that the shared pipeline kept /api/submit's own
// shapes: 200 {"accepted":N} and {"error": ...}.
func TestSubmitStillJSON(t *testing.T) {
	g := startGateway(t, nil)
	_, key := g.key(t, "127.0.0.1")
	r := g.submit(t, key, `{"field":"x","value":1}`)
	var ok struct{ Accepted int }
	if r.status != 200 || json.Unmarshal([]byte(r.body), &ok) != nil || ok.Accepted != 1 {
		t.Errorf("got %d %s, want 200 {\"accepted\":1}", r.status, r.body)
	}
	if r.header.Get("X-Influxdb-Version") != "" {
		t.Errorf("got X-Influxdb-Version on /api/submit, want none")
	}
}
