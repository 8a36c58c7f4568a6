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

	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/metrics"
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

// KeyAdmin manages keys for the admin API. *keystore.Store implements it;
// its changes reach authentication through the cache's change polling.
type KeyAdmin interface {
	Generate(ctx context.Context, nk keystore.NewKey) (keystore.Key, string, error)
	List(ctx context.Context, f keystore.Filter) ([]keystore.Key, error)
	Get(ctx context.Context, id int64) (keystore.Key, error)
	Update(ctx context.Context, id int64, u keystore.Update) (keystore.Key, error)
	Rotate(ctx context.Context, id int64, grace time.Duration) (keystore.Key, string, keystore.Key, error)
	Revoke(ctx context.Context, id int64) (keystore.Key, error)
	Audit(ctx context.Context, keyID int64, limit int) ([]keystore.AuditEntry, error)
}

// Usage records what each key did. *usage.Recorder implements it.
type Usage interface {
	Record(id int64, addr string, at time.Time, points int)
}

// Config holds the gateway's request-handling settings.
type Config struct {
	// MaxBody is the largest request body accepted, after decompression.
	MaxBody int64
	// MaxPoints is the largest batch accepted.
	MaxPoints int
	// BodyMemory bounds the bytes of request bodies held at once, from
	// reading a body until its request is answered; a body of unknown size
	// (chunked or gzip) counts as MaxBody, and one under 64 KiB is not
	// counted. A request waits up to BodyMemoryWait for room, then gets a
	// 503. 0 means no bound.
	BodyMemory     int64
	BodyMemoryWait time.Duration
	// Measurement is used for points that name none.
	Measurement string
	// HostTag is the tag set to the key's hostname on every point.
	HostTag string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// DefaultRate and DefaultBurst limit, in points per second and points,
	// keys that have no limit of their own. A rate of 0 means no limit.
	DefaultRate  float64
	DefaultBurst int
	// AuthFailRate and AuthFailBurst throttle addresses that fail to
	// authenticate: AuthFailBurst failures at once, then AuthFailRate per
	// second. A burst of 0 turns throttling off.
	AuthFailRate  float64
	AuthFailBurst int
	// Details, if set, adds to the /readyz body what operators want to see
	// beside the checks: spool depth, forwarder state, InfluxDB's health.
	Details func(ctx context.Context) map[string]any
	// Now returns the current time; it stamps points sent without one,
	// drives the rate limiters, and is the admin API's clock for key status
	// and expiry.
	Now func() time.Time
	// Metrics receives the gateway's counters and is served on /metrics.
	// New makes one when it is nil.
	Metrics *metrics.Metrics
	// Admin, when set, serves the admin API at /admin/api/ and the web
	// console at /admin/, managing keys through it.
	Admin KeyAdmin
	// AccessLog, when set, gets one line per request.
	AccessLog *AccessLog
	// Pacer, when set, may hold a write back before its body is read, so
	// that under more load than InfluxDB takes the gateway accepts about
	// what it delivers (see forward.Pacer).
	Pacer interface {
		Wait(ctx context.Context) time.Duration
	}
}

// DefaultConfig returns the settings the apiserver starts with.
func DefaultConfig() Config {
	return Config{
		MaxBody:        1 << 20,
		MaxPoints:      5000,
		BodyMemory:     16 << 20,
		BodyMemoryWait: 10 * time.Second,
		Measurement:    "custom_metrics",
		HostTag:        "host",
		AuthFailRate:   0.2,
		AuthFailBurst:  10,
		Now:            time.Now,
	}
}

// New returns the gateway's handler with every route, wrapped in request
// ids, request logging and request metrics.
func New(log *slog.Logger, cfg Config, keys Keys, out Writer, usage Usage) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	mux := http.NewServeMux()
	addRoutes(mux, log, cfg, keys, out, usage)
	return observe(cfg.AccessLog, cfg.Metrics, mux)
}
