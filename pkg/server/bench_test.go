package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	gatewaypkg "github.com/metricgate/metricgate/pkg/gateway"
	"github.com/metricgate/metricgate/pkg/influx"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/points"
	"github.com/metricgate/metricgate/pkg/server"
	"github.com/metricgate/metricgate/pkg/spool"
)

// BenchmarkSubmit is one-point requests through the whole handler, as the
// apiserver builds it (key cache over a real key store, usage recorder,
// access log, a real spool in --fsync interval mode), without the network:
// the gateway's own cost per request, and its allocations. Nothing listens
// at the InfluxDB address, so the forwarder only retries, rarely.
func BenchmarkSubmit(b *testing.B) {
	h, key := benchGateway(b, nil)
	serveLoop(b, h, key, []byte(`{"field": "os_updates", "value": 5}`))
}

// benchGateway starts a gateway as BenchmarkSubmit describes, its config
// changed by mutate if set, and returns its handler and a key for
// 127.0.0.1.
func benchGateway(b *testing.B, mutate func(*gatewaypkg.Config)) (http.Handler, string) {
	return benchGatewayKey(b, mutate, keystore.NewKey{Hostname: "127.0.0.1"})
}

// benchGatewayKey is benchGateway with the key nk describes.
func benchGatewayKey(b *testing.B, mutate func(*gatewaypkg.Config), nk keystore.NewKey) (http.Handler, string) {
	ctx := context.Background()
	dir := b.TempDir()
	cfg := gatewaypkg.Config{
		DB:           filepath.Join(dir, "keys.db"),
		Influx:       influx.Config{URL: "http://127.0.0.1:1", Bucket: "bench"},
		Server:       server.DefaultConfig(),
		Spool:        spool.Options{Dir: filepath.Join(dir, "spool"), Sync: spool.SyncInterval, SyncInterval: 100 * time.Millisecond},
		DrainTimeout: time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	g, err := gatewaypkg.New(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	_, plain, err := g.Keys().Generate(ctx, nk)
	if err != nil {
		b.Fatal(err)
	}
	return g.Handler(), plain
}

// serveLoop posts body to /api/submit with key through h until the
// benchmark is done, once the key cache has the key.
func serveLoop(b *testing.B, h http.Handler, key string, body []byte) {
	serveLoopAt(b, h, key, "/api/submit", body)
}

// serveLoopAt posts body to path, /api/submit or an InfluxDB write
// endpoint, with key through h until the benchmark is done.
func serveLoopAt(b *testing.B, h http.Handler, key, path string, body []byte) {
	// One connection's requests, as the apiserver's http.Server gives them.
	r := httptest.NewRequestWithContext(server.ConnContext(context.Background(), nil), "POST", path, nil)
	r.RemoteAddr = "127.0.0.1:40000"
	want := http.StatusOK
	if path == "/api/submit" {
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-API-Key", key)
	} else {
		r.Header.Set("Authorization", "Token "+key)
		want = http.StatusNoContent
	}
	r.ContentLength = int64(len(body))
	br := bytes.NewReader(body)
	w := httptest.NewRecorder()
	// The key cache picks up the new key within its poll.
	for deadline := time.Now().Add(5 * time.Second); w.Code != want && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		br.Reset(body)
		r.Body = io.NopCloser(br)
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
	}
	// CPU time, the process's own, says what a request costs even when
	// other processes share the machine, as they do where the wall clock
	// swings by a factor of ten.
	cpu0 := cpuTime()
	for b.Loop() {
		br.Reset(body)
		r.Body = io.NopCloser(br)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWriteLineProtocol is BenchmarkSubmit for /api/v2/write: one
// line per request, and a 5000-line batch shaped like a Telegraf agent's
// flush, each with a time (so the pacer and the time window pass them).
func BenchmarkWriteLineProtocol(b *testing.B) {
	var batch bytes.Buffer
	for i := range 5000 {
		fmt.Fprintf(&batch, "cpu,host=web-%d,cpu=cpu%d,region=eu-west usage_user=%d.5,usage_system=3.25,usage_idle=84.125 %d\n",
			i%50, i%8, i%97, 1699786600000000000+i)
	}
	for _, body := range []struct {
		name string
		data []byte
	}{{"one", []byte("custom_metrics,host=127.0.0.1 os_updates=5i 1699786600000000001\n")}, {"batch", batch.Bytes()}} {
		b.Run(body.name, func(b *testing.B) {
			h, key := benchGateway(b, nil)
			serveLoopAt(b, h, key, "/api/v2/write?bucket=b&precision=ns", body.data)
		})
	}
}

// BenchmarkChecks is one-point requests and 5000-point batches through the
// whole handler, with the isolation checks on (the defaults, and a key
// with a bucket of its own, whose records name it) and off (--max-future 0
// --max-fields 0 --max-tags 0 --max-series-per-key 0 --schema-guard=false
// --quarantine-after 0, a key of the gateway's bucket): what the checks
// cost per request.
func BenchmarkChecks(b *testing.B) {
	var batch bytes.Buffer
	batch.WriteString("[")
	for i := range 5000 {
		if i > 0 {
			batch.WriteString(",")
		}
		fmt.Fprintf(&batch, `{"measurement":"batch","field":"v","value":%d,"tags":{"shard":"%d"},"timestamp":%d}`, i, i%50, 1700000000000000000+i)
	}
	batch.WriteString("]")
	for _, body := range []struct {
		name string
		data []byte
	}{{"one", []byte(`{"field": "os_updates", "value": 5}`)}, {"batch", batch.Bytes()}} {
		for _, on := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/checks=%v", body.name, on), func(b *testing.B) {
				nk := keystore.NewKey{Hostname: "127.0.0.1", Bucket: "bench_own"}
				if !on {
					nk.Bucket = ""
				}
				h, key := benchGatewayKey(b, func(cfg *gatewaypkg.Config) {
					cfg.QuarantineAfter = 100
					if !on {
						cfg.Server.Limits = points.Limits{}
						cfg.Server.MaxSeriesPerKey = 0
						cfg.NoSchemaGuard = true
						cfg.QuarantineAfter = 0
					}
				}, nk)
				serveLoop(b, h, key, body.data)
			})
		}
	}
}
