package server

import (
	"net/http"
)

// addRoutes is the gateway's one route table.
func addRoutes(mux *http.ServeMux, cfg Config, keys Keys, out Writer) {
	mux.Handle("POST /api/submit", handleSubmit(cfg, keys, out))
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(keys, out))
}
