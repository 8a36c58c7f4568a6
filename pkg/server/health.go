package server

import (
	"context"
	"net/http"
	"time"
)

// handleHealthz answers 200 while the process is up.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz answers 200 when the key store and the writer (the spool)
// can take requests, and 503 when one cannot. With details (the admin
// listener) it names the failing part and adds what operators want to see:
// spool depth, forwarder state, whether InfluxDB answers. Without (the
// ingest listener, which anyone may reach) it says only ready or not.
func handleReadyz(keys Keys, out Writer, details func(context.Context) map[string]any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		checks := map[string]string{}
		status := http.StatusOK
		for name, ping := range map[string]func(context.Context) error{"keystore": keys.Ping, "writer": out.Ping} {
			if err := ping(ctx); err != nil {
				checks[name] = err.Error()
				status = http.StatusServiceUnavailable
			} else {
				checks[name] = "ok"
			}
		}
		state := "ready"
		if status != http.StatusOK {
			state = "not ready"
		}
		body := map[string]any{"status": state}
		if details != nil {
			body["checks"] = checks
			for k, v := range details(ctx) {
				body[k] = v
			}
		}
		writeJSON(w, status, body)
	})
}
