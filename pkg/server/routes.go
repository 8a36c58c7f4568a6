package server

import (
	"log/slog"
	"net/http"

	"metricgate/pkg/limit"
)

// addRoutes is the gateway's one route table.
func addRoutes(mux *http.ServeMux, log *slog.Logger, cfg Config, keys Keys, out Writer, usage Usage) {
	auth := &authenticator{
		keys:     keys,
		failures: limit.NewFailures(cfg.AuthFailRate, cfg.AuthFailBurst, cfg.Now),
		trusted:  cfg.TrustedProxies,
		log:      log,
	}
	mux.Handle("POST /api/submit", handleSubmit(cfg, auth, limit.NewKeys(cfg.DefaultRate, cfg.DefaultBurst, cfg.Now), out, usage))
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(keys, out, cfg.Details))
}
