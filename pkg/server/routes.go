package server

import (
	"log/slog"
	"net/http"

	"github.com/metricgate/metricgate/pkg/limit"
)

// addRoutes is the gateway's one route table. The three write endpoints
// share one pipeline, so one key's rate limit and its failed-auth count
// cover all of them; the admin API shares its authenticator.
func addRoutes(mux *http.ServeMux, log *slog.Logger, cfg Config, keys Keys, out Writer, usage Usage) {
	auth := &authenticator{
		keys:     keys,
		failures: limit.NewFailures(cfg.AuthFailRate, cfg.AuthFailBurst, cfg.Now),
		trusted:  cfg.TrustedProxies,
		log:      log,
		metrics:  cfg.Metrics,
	}
	write := &writePipeline{
		cfg:     cfg,
		auth:    auth,
		limits:  limit.NewKeys(cfg.DefaultRate, cfg.DefaultBurst, cfg.Now),
		bodies:  newBodyBudget(cfg.BodyMemory, cfg.MaxBody, cfg.BodyMemoryWait),
		out:     out,
		usage:   usage,
		metrics: cfg.Metrics,
	}
	mux.Handle("POST /api/submit", write.handler(submitAPI(cfg)))
	mux.Handle("POST /api/v2/write", influxHeaders(write.handler(influxV2API(cfg))))
	mux.Handle("POST /write", influxHeaders(write.handler(influxV1API(cfg))))
	mux.Handle("GET /ping", handlePing())
	mux.Handle("GET /health", handleInfluxHealth())
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(keys, out, cfg.Details))
	mux.Handle("GET /metrics", cfg.Metrics.Handler())
	if cfg.Admin != nil {
		admin := adminGuard(auth, usage, cfg.Now)
		mux.Handle("GET /admin/api/keys", admin(listKeys(cfg.Admin, cfg.Now)))
		mux.Handle("POST /admin/api/keys", admin(createKey(cfg.Admin, cfg.Now)))
		mux.Handle("GET /admin/api/keys/{id}", admin(showKey(cfg.Admin, cfg.Now)))
		mux.Handle("PATCH /admin/api/keys/{id}", admin(updateKey(cfg.Admin, cfg.Now)))
		mux.Handle("DELETE /admin/api/keys/{id}", admin(revokeKey(cfg.Admin, cfg.Now)))
		mux.Handle("POST /admin/api/keys/{id}/revoke", admin(revokeKey(cfg.Admin, cfg.Now)))
		mux.Handle("POST /admin/api/keys/{id}/rotate", admin(rotateKey(cfg.Admin, cfg.Now)))
		mux.Handle("GET /admin/api/keys/{id}/audit", admin(keyAudit(cfg.Admin)))
		mux.Handle("GET /admin/", handleConsole())
	}
}
