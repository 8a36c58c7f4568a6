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

	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/server"
	"github.com/metricgate/metricgate/pkg/spool"
	"github.com/metricgate/metricgate/pkg/usage"
)

// BenchmarkSubmit is one-point requests through the whole handler, as the
// apiserver wires it (key cache over a real key store, usage recorder,
// access log, a real spool in --fsync interval mode), without the network:
// the gateway's own cost per request, and its allocations.
func BenchmarkSubmit(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	keys, err := keystore.Open(ctx, filepath.Join(dir, "keys.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer keys.Close()
	_, plain, err := keys.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	cache, err := keystore.NewCache(ctx, keys, 25*time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close()
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(dir, "spool"), Sync: spool.SyncInterval})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	rec := usage.NewRecorder(keys, log)
	cfg := server.DefaultConfig()
	cfg.AccessLog = server.NewAccessLog(io.Discard, false)
	h := server.New(log, cfg, cache, sp, rec)
	body := []byte(`{"field": "os_updates", "value": 5}`)

	r := httptest.NewRequest("POST", "/api/submit", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-API-Key", plain)
	br := bytes.NewReader(body)
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
