package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	gatewaypkg "github.com/metricgate/metricgate/pkg/gateway"
	"github.com/metricgate/metricgate/pkg/influx"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/server"
	"github.com/metricgate/metricgate/pkg/spool"
)

// BenchmarkSubmit is one-point requests through the whole handler, as the
// apiserver builds it (key cache over a real key store, usage recorder,
// access log, a real spool in --fsync interval mode), without the network:
// the gateway's own cost per request, and its allocations. Nothing listens
// at the InfluxDB address, so the forwarder only retries, rarely.
func BenchmarkSubmit(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	cfg := gatewaypkg.Config{
		DB:           filepath.Join(dir, "keys.db"),
		Influx:       influx.Config{URL: "http://127.0.0.1:1", Bucket: "bench"},
		Server:       server.DefaultConfig(),
		Spool:        spool.Options{Dir: filepath.Join(dir, "spool"), Sync: spool.SyncInterval, SyncInterval: 100 * time.Millisecond},
		DrainTimeout: time.Millisecond,
	}
	g, err := gatewaypkg.New(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	_, plain, err := g.Keys().Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	h := g.Handler()
	body := []byte(`{"field": "os_updates", "value": 5}`)

	r := httptest.NewRequest("POST", "/api/submit", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-API-Key", plain)
	br := bytes.NewReader(body)
	w := httptest.NewRecorder()
	// The key cache picks up the new key within its poll.
	for deadline := time.Now().Add(5 * time.Second); w.Code != http.StatusOK && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		br.Reset(body)
		r.Body = io.NopCloser(br)
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
	}
	for b.Loop() {
		br.Reset(body)
		r.Body = io.NopCloser(br)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
