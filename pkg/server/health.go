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

// handleReadyz answers 200 when the key store and InfluxDB are reachable,
// and 503 naming the part that is not.
func handleReadyz(keys Keys, out Writer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		checks := map[string]string{}
		status := http.StatusOK
		for name, ping := range map[string]func(context.Context) error{"keystore": keys.Ping, "influxdb": out.Ping} {
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
		writeJSON(w, status, map[string]any{"status": state, "checks": checks})
	})
}
