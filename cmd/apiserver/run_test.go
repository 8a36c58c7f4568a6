package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/gateway"
)

func TestParseFlags(t *testing.T) {
	env := map[string]string{"APISERVER_LISTEN": "127.0.0.1:9", "KEYSTORE_DB": "/tmp/k.db", "INFLUX_URL": "http://influx:8086", "INFLUX_BUCKET": "db/rp"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name  string
		args  []string
		check func(*options) bool
	}{
		{"EnvDefaults", nil, func(o *options) bool {
			return o.listen == "127.0.0.1:9" && o.gateway.DB == "/tmp/k.db" && o.gateway.Influx.URL == "http://influx:8086" && o.gateway.Influx.Bucket == "db/rp"
		}},
		{"FlagsWin", []string{"--listen", ":1", "--db", "x.db"}, func(o *options) bool { return o.listen == ":1" && o.gateway.DB == "x.db" }},
		{"TrustedProxies", []string{"--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "192.0.2.1"}, func(o *options) bool {
			return len(o.gateway.Server.TrustedProxies) == 2 && o.gateway.Server.TrustedProxies[1] == netip.MustParsePrefix("192.0.2.1/32")
		}},
		{"TrustedProxiesMapped", []string{"--trusted-proxy", "::ffff:10.1.2.3/104", "--trusted-proxy", "::ffff:192.0.2.1"}, func(o *options) bool {
			p := o.gateway.Server.TrustedProxies
			return len(p) == 2 && p[0] == netip.MustParsePrefix("10.0.0.0/8") && p[1] == netip.MustParsePrefix("192.0.2.1/32")
		}},
		{"HardeningDefaults", nil, func(o *options) bool {
			s := o.gateway.Server
			return s.AdminKeyMaxTTL == 90*24*time.Hour && s.BodyMemoryPerKey == 4<<20 && s.BodyReadTimeout == 10*time.Second
		}},
		{"Hardening", []string{"--admin-key-max-ttl", "24h", "--body-memory-per-key", "0", "--body-read-timeout", "2s"}, func(o *options) bool {
			s := o.gateway.Server
			return s.AdminKeyMaxTTL == 24*time.Hour && s.BodyMemoryPerKey == 0 && s.BodyReadTimeout == 2*time.Second
		}},
		{"Limits", []string{"--max-body", "100", "--max-points", "7", "--host-tag", "source", "--measurement", "m"}, func(o *options) bool {
			return o.gateway.Server.MaxBody == 100 && o.gateway.Server.MaxPoints == 7 && o.gateway.Server.HostTag == "source" && o.gateway.Server.Measurement == "m"
		}},
		{"BodyMemory", nil, func(o *options) bool {
			return o.gateway.Server.BodyMemory == 16<<20 && o.gateway.Server.BodyMemoryWait == 10*time.Second
		}},
		{"BodyMemoryOff", []string{"--body-memory", "0"}, func(o *options) bool { return o.gateway.Server.BodyMemory == 0 }},
		{"BudgetDefaults", nil, func(o *options) bool {
			l := o.gateway.Server.Limits
			return l.MaxFields == 256 && l.MaxTags == 64 && l.MaxNameLen == 256 && l.MaxValueLen == 65536 && l.MaxFuture == 10*time.Minute &&
				l.MaxPast == 0 && o.gateway.Server.MaxSeriesPerKey == 10000 && !o.gateway.NoSchemaGuard &&
				o.gateway.Forward.DeadLetterMaxBytes == 64<<20 && o.gateway.Forward.MaxExtraWrites == 16
		}},
		{"Budgets", []string{"--max-fields", "10", "--max-tags", "3", "--max-future", "1m", "--max-past", "720h", "--max-series-per-key", "0",
			"--schema-guard=false", "--dead-letter-max-bytes", "1000"}, func(o *options) bool {
			l := o.gateway.Server.Limits
			return l.MaxFields == 10 && l.MaxTags == 3 && l.MaxFuture == time.Minute && l.MaxPast == 720*time.Hour &&
				o.gateway.Server.MaxSeriesPerKey == 0 && o.gateway.NoSchemaGuard && o.gateway.Forward.DeadLetterMaxBytes == 1000
		}},
		{"QuarantineDefaults", nil, func(o *options) bool {
			return o.gateway.QuarantineAfter == 100 && o.gateway.QuarantineWindow == time.Minute
		}},
		{"Quarantine", []string{"--quarantine-after", "0", "--quarantine-window", "10m"}, func(o *options) bool {
			return o.gateway.QuarantineAfter == 0 && o.gateway.QuarantineWindow == 10*time.Minute
		}},
		{"Pacing", nil, func(o *options) bool { return o.gateway.PaceBatches == 8 }},
		{"PacingOff", []string{"--pace-batches", "0"}, func(o *options) bool { return o.gateway.PaceBatches == 0 }},
		{"AdminDefault", nil, func(o *options) bool { return o.adminDefault && o.adminListen == "127.0.0.1:5003" }},
		{"AdminGiven", []string{"--admin-listen", "127.0.0.1:7"}, func(o *options) bool { return !o.adminDefault }},
		{"PacingFewerWorkers", []string{"--forward-workers", "1", "--pace-batches", "3"}, func(o *options) bool { return o.gateway.PaceBatches == 3 }},
		{"KeyStoreDefaults", nil, func(o *options) bool {
			h, _ := os.Hostname()
			return o.gateway.DBTimeout == 5*time.Second && o.gateway.CacheMaxStale == 5*time.Minute && o.gateway.Node == h && h != ""
		}},
		{"PostgreSQL", []string{"--db", "postgres://gw@db:5432/keys", "--db-timeout", "2s", "--node-name", "gw-2", "--cache-max-stale", "30s"}, func(o *options) bool {
			return o.gateway.DB == "postgres://gw@db:5432/keys" && o.gateway.DBTimeout == 2*time.Second && o.gateway.Node == "gw-2" && o.gateway.CacheMaxStale == 30*time.Second
		}},
		{"ClusterDefaults", nil, func(o *options) bool {
			return o.gateway.Limits == "" && !o.gateway.LimitsFailClosed && !o.gateway.ProxyProtocol
		}},
		{"Cluster", []string{"--limits", "redis://:pw@10.0.0.5:6379/2", "--limits-fail", "closed", "--proxy-protocol", "--trusted-proxy", "10.0.0.9"}, func(o *options) bool {
			return o.gateway.Limits == "redis://:pw@10.0.0.5:6379/2" && o.gateway.LimitsFailClosed && o.gateway.ProxyProtocol
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, getenv, &bytes.Buffer{})
			if err != nil {
				t.Fatalf("parseFlags(%v): %v", tt.args, err)
			}
			if !tt.check(o) {
				t.Errorf("parseFlags(%v) = %+v", tt.args, o)
			}
		})
	}
	for _, bad := range [][]string{{"--trusted-proxy", "nope"}, {"--max-points", "0"}, {"--body-memory", "-1"}, {"--log-format", "xml"}, {"--access-log", "some"}, {"extra"}, {"--nope"},
		{"--pace-batches", "5"}, {"--pace-batches", "-1"}, {"--db-timeout", "0"}, {"--cache-max-stale", "-1s"},
		{"--trusted-proxy", "proxy.example.com"}, {"--trusted-proxy", "10.0.0.0/33"}, {"--trusted-proxy", "fe80::1%eth0"},
		{"--admin-key-max-ttl", "0"}, {"--admin-key-max-ttl", "876001h"}, {"--body-memory-per-key", "-1"}, {"--body-read-timeout", "-1s"},
		{"--max-fields", "-1"}, {"--max-past", "-1h"}, {"--max-name-len", "0"}, {"--dead-letter-max-bytes", "0"},
		{"--quarantine-after", "-1"}, {"--quarantine-window", "0"}, {"--limits-fail", "maybe"}, {"--proxy-protocol"}} {
		if _, err := parseFlags(bad, getenv, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%v) succeeded, want an error", bad)
		}
	}
	// A Redis address that does not parse is an error naming the flag,
	// and not the password it holds.
	for _, bad := range []string{"10.0.0.5:6379", "http://10.0.0.5", "redis://u:s3cret@10.0.0.5:port/0"} {
		_, err := parseFlags([]string{"--limits", bad}, getenv, &bytes.Buffer{})
		if err == nil || !strings.HasPrefix(err.Error(), "--limits: not a Redis URL") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("--limits %q: got %v, want an error starting --limits: not a Redis URL, without the password", bad, err)
		}
	}
}

// TestAdminListenNeedsLoopbackOrTLS checks that the admin API is not served
// in plain HTTP beyond the machine unless asked for, and that an empty
// --admin-listen turns it off.
func TestAdminListenNeedsLoopbackOrTLS(t *testing.T) {
	getenv := func(string) string { return "" }
	for _, args := range [][]string{
		{"--admin-listen", "127.0.0.1:5003"}, {"--admin-listen", "[::1]:5003"}, {"--admin-listen", "localhost:5003"},
		{"--admin-listen", ""}, {"--admin-listen", "0.0.0.0:5003", "--admin-insecure"},
		{"--admin-listen", "192.0.2.1:5003", "--tls-cert", "c.pem", "--tls-key", "k.pem"},
	} {
		if _, err := parseFlags(args, getenv, io.Discard); err != nil {
			t.Errorf("parseFlags(%q): %v", args, err)
		}
	}
	for _, addr := range []string{"0.0.0.0:5003", ":5003", "192.0.2.1:5003", "[::]:5003", "admin.example.com:5003"} {
		_, err := parseFlags([]string{"--admin-listen", addr}, getenv, io.Discard)
		if want := "--admin-listen " + addr + " is not a loopback address"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseFlags(--admin-listen %s) = %v, want an error saying %q", addr, err, want)
		}
	}
}

// TestRun starts the real program, submits a point, and stops it as SIGTERM
// would.
func TestRun(t *testing.T) {
	db := testenv.InfluxDB(t)
	dbPath, key := newKeyDB(t)
	r := startRun(t, "http", "--db", dbPath, "--influx-url", db.URL, "--influx-bucket", db.Name, "--spool-dir", t.TempDir(), "--batch-wait", "10ms")
	base := r.base
	waitReady(t, base)

	req, _ := http.NewRequest("POST", base+"/api/submit", strings.NewReader(`{"field": "os_updates", "value": 5, "timestamp": 1699786600000000000}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("submit: got %d, want 200", resp.StatusCode)
	}
	if n := db.WaitCount(t, "custom_metrics", "os_updates", 1, 5*time.Second); n != 1 {
		t.Errorf("got %d points in InfluxDB, want 1", n)
	}

	// The spool and forwarder feed /metrics. The forwarder counts a batch
	// just after InfluxDB confirms it, so allow it a moment.
	want := []string{"metricgate_spool_points_forwarded_total 1", "metricgate_spool_depth_points 0", "metricgate_points_accepted_total 1"}
	var missing []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err = http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metricsText, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		missing = missing[:0]
		for _, w := range want {
			if !strings.Contains(string(metricsText), w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("/metrics lacks %q", missing)
	}

	if err := r.stop(); err != nil {
		t.Errorf("run returned %v, want nil after shutdown", err)
	}
	if !strings.Contains(r.logs.String(), `"msg":"stopped"`) {
		t.Errorf("log does not record the shutdown:\n%s", r.logs.String())
	}
}

// TestAccessLogLevels runs the apiserver with each --access-log and checks
// which of an accepted write (204) and a refused one (400) get a line.
func TestAccessLogLevels(t *testing.T) {
	db := testenv.InfluxDB(t)
	dbPath, key := newKeyDB(t)
	for _, tt := range []struct {
		level         string
		accepted, bad bool // whether each gets a line
	}{{"all", true, true}, {"errors", false, true}, {"none", false, false}} {
		t.Run(tt.level, func(t *testing.T) {
			r := startRun(t, "http", "--db", dbPath, "--influx-url", db.URL, "--influx-bucket", db.Name, "--spool-dir", t.TempDir(),
				"--access-log", tt.level)
			waitReady(t, r.base)
			for body, want := range map[string]int{"m v=1i 1699786600000000000\n": 204, "m v=\n": 400} {
				req, _ := http.NewRequest("POST", r.base+"/api/v2/write?bucket=b&precision=ns", strings.NewReader(body))
				req.Header.Set("Authorization", "Token "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Fatalf("%q: got %d, want %d", body, resp.StatusCode, want)
				}
			}
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			logs := r.logs.String()
			for status, want := range map[int]bool{204: tt.accepted, 400: tt.bad} {
				line := fmt.Sprintf(`"path":"/api/v2/write","status":%d,`, status)
				if got := strings.Contains(logs, line); got != want {
					t.Errorf("--access-log %s: a line for the %d answer: %v, want %v\n%s", tt.level, status, got, want, logs)
				}
			}
		})
	}
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
	}
	t.Fatalf("%s never became ready", base)
}

// TestRunTLS serves HTTPS with a certificate made for the test.
func TestRunTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "metricgate test"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)

	r := startRun(t, "https", "--db", filepath.Join(dir, "k.db"), "--spool-dir", filepath.Join(dir, "spool"),
		"--influx-url", "http://"+testenv.FreeAddr(t), "--tls-cert", certPath, "--tls-key", keyPath, "--drain-timeout", "10ms")
	pool := x509.NewCertPool()
	pool.AddCert(must(x509.ParseCertificate(der)))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err = client.Get(r.base + "/healthz"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("GET over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("got %d (TLS %v), want 200 over TLS", resp.StatusCode, resp.TLS != nil)
	}
	if err := r.stop(); err != nil {
		t.Errorf("run: %v", err)
	}
	if err := run(context.Background(), []string{"--tls-cert", certPath}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("--tls-cert without --tls-key: want an error")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestAdminListenerInUse starts the apiserver with its admin address taken
// by another process: given explicitly, that is an error naming the
// address; left at its default, the apiserver runs without the admin
// listener and says why, so two apiservers on one host both take writes.
func TestAdminListenerInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	args := []string{"--listen", "127.0.0.1:0", "--admin-listen", taken.Addr().String(), "--db", filepath.Join(dir, "k.db"),
		"--spool-dir", filepath.Join(dir, "spool"), "--influx-url", "http://" + testenv.FreeAddr(t), "--drain-timeout", "10ms"}
	err = run(context.Background(), args, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Errorf("explicit --admin-listen on a taken address: got %v, want an error naming it", err)
	}

	o, err := parseFlags(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.adminDefault = true // as if --admin-listen were its default
	logs := &testenv.Buffer{}
	gw, err := gateway.New(context.Background(), o.gateway, newLogger(logs, "json"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	servers, err := listen(o, gw, newLogger(logs, "json"))
	if err != nil {
		t.Fatalf("default admin address taken: got %v, want the apiserver to run without it", err)
	}
	for _, s := range servers {
		s.ln.Close()
	}
	if len(servers) != 1 || !strings.Contains(logs.String(), "admin listener not started") {
		t.Errorf("got %d listeners and log %s; want the ingest one only, and a warning", len(servers), logs.String())
	}
}
