// Package server is metricgate's HTTP gateway: it authenticates each request
// by its API key and caller address, validates the points, tags them with
// the key's host and hands them to a writer.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"reflect"
	"time"

	"github.com/metricgate/metricgate/pkg/deadletter"
	"github.com/metricgate/metricgate/pkg/forward"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/limit"
	"github.com/metricgate/metricgate/pkg/metrics"
	"github.com/metricgate/metricgate/pkg/points"
)

// Keys authenticates API keys. *keystore.Cache implements it, answering
// from memory.
type Keys interface {
	Authenticate(ctx context.Context, key string, addr netip.Addr) (keystore.Key, error)
	Ping(ctx context.Context) error
}

// Writer stores line protocol written by a key for a bucket (the key's
// own, "" for the gateway's), which it keeps with the lines so that they
// are written to that bucket alone and what InfluxDB later refuses is
// traced to the key: data holds points lines. It returns nil only when
// the points are safe. *spool.Spool implements it.
type Writer interface {
	AppendTo(keyID int64, bucket string, data []byte, points int) error
	Ping(ctx context.Context) error
}

// Schema refuses a request whose fields' types conflict with what their
// bucket holds, with an error wrapping points.ErrInvalid, and remembers the
// types of those it accepts. *schema.Guard implements it; a nil one checks
// nothing.
type Schema interface {
	Check(bucket string, fields []points.FieldType) error
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
	Plan(ctx context.Context, defs []keystore.NewKey, o keystore.PlanOptions) (keystore.Plan, error)
	Apply(ctx context.Context, p keystore.Plan) (keystore.Plan, error)
	Release(ctx context.Context, id int64) (keystore.Key, bool, error)
}

// DeadLetters are the points InfluxDB refused for good, for the admin API
// to show and send again. The gateway implements it over its spool's
// dead-letter file.
type DeadLetters interface {
	// Read returns the letters, oldest first.
	Read(ctx context.Context) ([]deadletter.Letter, error)
	// Replay sends again the letters that sel keeps (all when nil) and
	// says what became of them (see forward.Replay).
	Replay(ctx context.Context, sel func(deadletter.Letter) bool) (forward.ReplayReport, error)
}

// Limits is what requests are limited by: the field values per second
// of each key (Allow takes n tokens, Check looks without taking), and the
// failed authentications of each source address (Fail counts one and says
// whether the source was already throttled). *limit.Local implements it
// for one replica alone; *clusterlimit.Limiter across every replica,
// through Redis. Rate and burst 0 stand for the defaults the implementation
// was built with.
type Limits interface {
	Allow(id int64, rate float64, burst, n int) limit.Decision
	Check(id int64, rate float64, burst int) limit.Decision
	Fail(addr netip.Addr) limit.Failure
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
	// BodyMemoryPerKey bounds the bytes of bodies one key holds at once,
	// counted as BodyMemory counts them, so one key cannot take all of it;
	// past it the key's request waits as long for room, then gets 429. 0
	// means no bound per key.
	BodyMemoryPerKey int64
	// BodyReadTimeout is how long a body that holds room in BodyMemory has
	// to arrive once its room is given; a slower sender gets 408 and gives
	// the room back. 0 leaves the server's read timeout alone.
	BodyReadTimeout time.Duration
	// Limits bound each point: its fields and tags, the length of its names
	// and values, and how far its time may be from Now. A zero MaxFields,
	// MaxTags, MaxFuture or MaxPast bounds nothing.
	Limits points.Limits
	// MaxSeriesPerKey caps the distinct series (measurement and tags) a
	// key may write in each clock hour; its requests with a new series
	// past it get 429. 0 means no cap.
	MaxSeriesPerKey int
	// Bucket is the bucket the points of keys without a bucket of their
	// own go to. The schema guard checks a point against the field types
	// of the bucket it goes to.
	Bucket string
	// Measurement is used for points that name none.
	Measurement string
	// HostTag is the tag set to the key's hostname on every point.
	HostTag string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// DefaultRate and DefaultBurst limit, in field values per second and
	// field values, keys that have no limit of their own. A rate of 0 means
	// no limit. They, AuthFailRate and AuthFailBurst are what Deps.Limits is
	// built with; New itself does not read them.
	DefaultRate  float64
	DefaultBurst int
	// AuthFailRate and AuthFailBurst throttle addresses that fail to
	// authenticate: AuthFailBurst failures at once, then AuthFailRate per
	// second. A burst of 0 turns throttling off.
	AuthFailRate  float64
	AuthFailBurst int
	// AdminKeyMaxTTL is the longest an admin key made, rotated or given
	// more time over the admin API may work; such a key must also be bound
	// to no more than a /24 (IPv4) or /64 (IPv6). See keystore.AdminLimits.
	AdminKeyMaxTTL time.Duration
	// Now returns the current time; it stamps points sent without one,
	// drives the rate limiters, and is the admin API's clock for key status
	// and expiry.
	Now func() time.Time
}

// DefaultConfig returns the settings the apiserver starts with.
func DefaultConfig() Config {
	return Config{
		MaxBody:        1 << 20,
		MaxPoints:      5000,
		BodyMemory:     16 << 20,
		BodyMemoryWait: 10 * time.Second,
		// A quarter of the body memory: four keys sending at once fill it.
		BodyMemoryPerKey: 4 << 20,
		// 1 MiB in 10 s is 100 KiB/s, slower than any link a server
		// sending metrics should have.
		BodyReadTimeout: 10 * time.Second,
		Limits: points.Limits{
			MaxFields:   256,
			MaxTags:     64,
			MaxNameLen:  points.DefaultMaxNameLen,
			MaxValueLen: points.DefaultMaxValueLen,
			MaxFuture:   10 * time.Minute,
		},
		MaxSeriesPerKey: 10000,
		Measurement:     "custom_metrics",
		HostTag:         "host",
		AuthFailRate:    0.2,
		AuthFailBurst:   10,
		AdminKeyMaxTTL:  keystore.DefaultAdminKeyMaxTTL,
		Now:             time.Now,
	}
}

// Pacer may hold a write back before its body is read, so that under more
// load than InfluxDB takes the gateway accepts about what it delivers.
// *forward.Pacer implements it.
type Pacer interface {
	Wait(ctx context.Context) time.Duration
}

// Deps are the parts the handler works with. Every one is required.
type Deps struct {
	Log *slog.Logger
	// Keys authenticates requests: the key cache.
	Keys Keys
	// Admin manages keys for the admin API and the web console.
	Admin KeyAdmin
	// DeadLetters shows and replays the dead letters for the admin API.
	DeadLetters DeadLetters
	// Writer stores accepted points: the spool.
	Writer Writer
	// Schema guards the field types of the buckets points go to.
	Schema Schema
	// Usage records what each key did.
	Usage Usage
	// Metrics receives the gateway's counters and is served on /metrics.
	Metrics *metrics.Metrics
	// AccessLog gets one line per request, or per the requests its level
	// says.
	AccessLog *AccessLog
	// Pacer may hold writes back while the forwarder catches up.
	Pacer Pacer
	// Limits limits keys' rates and failed authentications: this
	// replica's own (limit.Local, built from DefaultRate, AuthFailRate and
	// the rest) or the cluster's.
	Limits Limits
	// Status adds to the /readyz body what operators want to see beside
	// the checks: spool depth, forwarder state, InfluxDB's health.
	Status func(ctx context.Context) map[string]any
}

// errMissingDep means New was called without one of its Deps.
var errMissingDep = errors.New("server: missing dependency")

// check returns errMissingDep naming the first dependency that is nil.
func (d Deps) check() error {
	v := reflect.ValueOf(d)
	for i := range v.NumField() {
		if v.Field(i).IsNil() {
			return fmt.Errorf("%w: Deps.%s", errMissingDep, v.Type().Field(i).Name)
		}
	}
	return nil
}

// Handlers are the handlers of the gateway's two listeners. Ingest takes
// writes and answers health checks and /metrics; it is what clients reach.
// Admin serves the admin API, the web console and the detailed readiness
// report, on a listener of its own that operators keep private.
type Handlers struct {
	Ingest http.Handler
	Admin  http.Handler
}

// New returns the gateway's handlers with every route, each wrapped in
// request ids, request logging and request metrics. It returns an error
// naming any dependency that is missing.
func New(cfg Config, d Deps) (Handlers, error) {
	if err := d.check(); err != nil {
		return Handlers{}, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AdminKeyMaxTTL <= 0 {
		cfg.AdminKeyMaxTTL = keystore.DefaultAdminKeyMaxTTL
	}
	warnWideProxies(d.Log, cfg.TrustedProxies)
	ingest, admin := newRouter(), http.NewServeMux()
	addRoutes(ingest, admin, cfg, d)
	return Handlers{Ingest: observe(d.AccessLog, d.Metrics, ingest), Admin: observe(d.AccessLog, d.Metrics, admin)}, nil
}
