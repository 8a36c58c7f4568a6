package server

import (
	"net/http"
	"sync"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/limit"
)

// addRoutes is the gateway's one route table, for both listeners. The
// three write endpoints share one pipeline, so one key's rate limit and its
// failed-auth count cover all of them; the admin API shares its
// authenticator, so failures on either listener count together.
func addRoutes(mux *router, adminMux *http.ServeMux, cfg Config, d Deps) {
	auth := &authenticator{
		keys:       d.Keys,
		failures:   d.Limits,
		lookupLogs: limit.NewFailures(0, 0, cfg.Now),
		trusted:    cfg.TrustedProxies,
		log:        d.Log,
		metrics:    d.Metrics,
	}
	write := &writePipeline{
		cfg:     cfg,
		auth:    auth,
		limits:  d.Limits,
		series:  limit.NewSeries(cfg.MaxSeriesPerKey, time.Hour),
		schema:  d.Schema,
		bodies:  newBodyBudget(cfg.BodyMemory, cfg.BodyMemoryPerKey, cfg.MaxBody, cfg.BodyMemoryWait),
		pacer:   d.Pacer,
		out:     d.Writer,
		usage:   d.Usage,
		metrics: d.Metrics,
	}
	mux.handleExact("POST /api/submit", write.handler(submitAPI(cfg)))
	mux.handleExact("POST /api/v2/write", influxHeaders(write.handler(influxV2API(cfg))))
	mux.handleExact("POST /write", influxHeaders(write.handler(influxV1API(cfg))))
	mux.Handle("GET /ping", handlePing())
	mux.Handle("GET /health", handleInfluxHealth())
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(d.Keys, d.Writer, nil))
	mux.Handle("GET /metrics", d.Metrics.Handler())

	adminMux.Handle("GET /healthz", handleHealthz())
	adminMux.Handle("GET /readyz", handleReadyz(d.Keys, d.Writer, d.Status))
	adminMux.Handle("GET /metrics", d.Metrics.Handler())
	admin := adminGuard(auth, d.Usage, cfg.Now)
	limits := keystore.AdminLimits{MaxTTL: cfg.AdminKeyMaxTTL}
	var grants sync.Mutex // held by the handlers that may widen a key, across their check and change
	adminMux.Handle("GET /admin/api/keys", admin(listKeys(d.Admin, cfg.Now)))
	adminMux.Handle("POST /admin/api/keys", admin(createKey(d.Admin, limits, cfg.Now)))
	adminMux.Handle("GET /admin/api/keys/{id}", admin(showKey(d.Admin, cfg.Now)))
	adminMux.Handle("PATCH /admin/api/keys/{id}", admin(updateKey(d.Admin, limits, &grants, cfg.Now)))
	adminMux.Handle("DELETE /admin/api/keys/{id}", admin(revokeKey(d.Admin, cfg.Now)))
	adminMux.Handle("POST /admin/api/keys/{id}/revoke", admin(revokeKey(d.Admin, cfg.Now)))
	adminMux.Handle("POST /admin/api/keys/{id}/rotate", admin(rotateKey(d.Admin, limits, &grants, cfg.Now)))
	adminMux.Handle("GET /admin/api/keys/{id}/audit", admin(keyAudit(d.Admin)))
	adminMux.Handle("POST /admin/api/keys/{id}/release", admin(releaseKey(d.Admin, cfg.Now)))
	adminMux.Handle("GET /admin/api/dead-letters", admin(listDeadLetters(d.DeadLetters)))
	adminMux.Handle("POST /admin/api/dead-letters/replay", admin(replayDeadLetters(d.DeadLetters)))
	adminMux.Handle("PUT /admin/api/keys/by-name/{name}", admin(putKey(d.Admin, limits, &grants, cfg.Now)))
	adminMux.Handle("GET /admin/", handleConsole())
}
