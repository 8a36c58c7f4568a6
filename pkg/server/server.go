// Package server is metricgate's HTTP gateway: it authenticates each request
// by its API key and caller address, validates the points, tags them with
// the key's host and hands them to a writer.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"metricgate/pkg/keystore"
)

// Keys authenticates API keys. *keystore.Store implements it.
type Keys interface {
	Authenticate(ctx context.Context, key string, addr netip.Addr) (keystore.Key, error)
	Ping(ctx context.Context) error
}

// Writer stores line protocol. It returns nil only when the points are
// safe. *influx.Writer implements it.
type Writer interface {
	Write(ctx context.Context, lines []byte) error
	Ping(ctx context.Context) error
}

// Config holds the gateway's request-handling settings.
type Config struct {
	// MaxBody is the largest request body accepted, after decompression.
	MaxBody int64
	// MaxPoints is the largest batch accepted.
	MaxPoints int
	// Measurement is used for points that name none.
	Measurement string
	// HostTag is the tag set to the key's hostname on every point.
	HostTag string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Now returns the current time; it stamps points sent without one.
	Now func() time.Time
}

// DefaultConfig returns the settings the apiserver starts with.
func DefaultConfig() Config {
	return Config{
		MaxBody:     1 << 20,
		MaxPoints:   5000,
		Measurement: "custom_metrics",
		HostTag:     "host",
		Now:         time.Now,
	}
}

// New returns the gateway's handler with every route, wrapped in request
// logging.
func New(log *slog.Logger, cfg Config, keys Keys, out Writer) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	mux := http.NewServeMux()
	addRoutes(mux, cfg, keys, out)
	return logRequests(log, mux)
}
