// Package gateway assembles metricgate's gateway from its parts: the key
// store and its cache, the spool, the forwarder to InfluxDB, usage
// recording, metrics and the HTTP handler. The apiserver and the end-to-end
// tests build it here, the one place, so the tests run what production runs.
package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/metricgate/metricgate/pkg/clusterlimit"
	"github.com/metricgate/metricgate/pkg/deadletter"
	"github.com/metricgate/metricgate/pkg/forward"
	"github.com/metricgate/metricgate/pkg/influx"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/limit"
	"github.com/metricgate/metricgate/pkg/metrics"
	"github.com/metricgate/metricgate/pkg/quarantine"
	"github.com/metricgate/metricgate/pkg/schema"
	"github.com/metricgate/metricgate/pkg/server"
	"github.com/metricgate/metricgate/pkg/spool"
	"github.com/metricgate/metricgate/pkg/usage"
)

// Config is everything the gateway is built from.
type Config struct {
	// DB is the key store keyctl manages: a SQLite file, or a PostgreSQL
	// database (postgres://...) that several gateways share.
	DB string
	// DBTimeout bounds each attempt to connect to PostgreSQL. Default 5 s.
	DBTimeout time.Duration
	// Node names this gateway among those sharing a PostgreSQL key store,
	// in the audit log and in key usage.
	Node string
	// KeyPoll is how often the key cache asks the store whether anything
	// changed: on SQLite a revocation reaches requests within it (default
	// 25 ms); on PostgreSQL, which notifies at once, it only backs the
	// notifications up (default 5 s).
	KeyPoll time.Duration
	// CacheMaxStale is how long the key cache keeps answering from memory
	// after it last heard from the key store; after that requests get 503.
	// Default 5 minutes.
	CacheMaxStale time.Duration
	// Limits is the Redis (redis://host:port/db) through which every
	// replica shares the keys' rate limits and the failed-authentication
	// throttle; empty, each replica limits alone, and N replicas behind a
	// load balancer allow N times the limits.
	Limits string
	// LimitsFailClosed refuses limited keys with 429 while that Redis is
	// unreachable; otherwise each replica limits them alone at its share.
	LimitsFailClosed bool
	// ProxyProtocol makes the ingest listener (see Listener) read the
	// PROXY protocol header (v1 or v2) that the proxies in
	// Server.TrustedProxies must send, for the client's address.
	ProxyProtocol bool
	// Resolver looks up the DNS names keys are bound to; nil for the
	// system's resolver.
	Resolver *net.Resolver
	// Influx is where the forwarder delivers.
	Influx influx.Config
	// Server holds the request-handling settings.
	Server server.Config
	// Spool is the durable spool of accepted points.
	Spool spool.Options
	// Forward sets how the spool is forwarded; its callbacks and dead-letter
	// path are the gateway's own.
	Forward forward.Options
	// PaceBatches holds new writes back once the spool's backlog has grown
	// by this many batches while InfluxDB takes writes (see forward.Pacer);
	// 0 never holds them back.
	PaceBatches int
	// UsageFlush is how often key usage is written to the store. Default 1 s.
	UsageFlush time.Duration
	// DrainTimeout is how long Close forwards what the spool holds before
	// leaving the rest on disk for the next start.
	DrainTimeout time.Duration
	// TextLog writes the access log as key=value pairs instead of JSON.
	TextLog bool
	// AccessLog says which requests get an access log line; the zero
	// value is all of them.
	AccessLog server.AccessLevel
	// NoSchemaGuard turns the schema guard off: field types are then
	// checked by InfluxDB alone, and a conflicting point is dead-lettered
	// after it was accepted.
	NoSchemaGuard bool
	// SchemaFields is the most fields the schema guard remembers; default
	// 100,000 (about 10 MB at most).
	SchemaFields int
	// QuarantineAfter quarantines a key once InfluxDB has refused this
	// many of its points within QuarantineWindow (default a minute); 0
	// never does. See package quarantine.
	QuarantineAfter  int
	QuarantineWindow time.Duration
}

// Gateway is a running gateway: its background work (the forwarder, usage
// flushing, the key cache's polling) runs from New until Close.
type Gateway struct {
	handlers server.Handlers
	metrics  *metrics.Metrics
	proxy    bool
	trusted  []netip.Prefix
	keys     *keystore.Store
	spool    *spool.Spool
	fwd      *forward.Forwarder
	log      *slog.Logger
	drain    time.Duration
	// closers run in reverse order on Close, so each part stops before
	// what it depends on.
	closers []func() error
}

// New opens the key store and the spool, starts the forwarder and usage
// flushing, and builds the handler. The application log goes to log, the
// one line per request to access. On an error it returns, everything it
// had started is stopped again.
func New(ctx context.Context, cfg Config, log *slog.Logger, access io.Writer) (_ *Gateway, err error) {
	cfg.setDefaults()
	g := &Gateway{log: log, drain: cfg.DrainTimeout}
	defer func() {
		if err != nil {
			g.stop()
		}
	}()
	name := "metricgate"
	if cfg.Node != "" {
		name += " " + cfg.Node
	}
	if g.keys, err = keystore.OpenWith(ctx, cfg.DB, keystore.Options{Timeout: cfg.DBTimeout, Name: name}); err != nil {
		return nil, err
	}
	g.closers = append(g.closers, g.keys.Close)
	g.keys.Node = cfg.Node
	m := metrics.New()
	watch := g.quarantineWatch(cfg, m, log)
	if cfg.Resolver != nil {
		g.keys.UseResolver(cfg.Resolver)
	}
	cache, err := keystore.NewCache(ctx, g.keys, keystore.CacheOptions{Poll: cfg.KeyPoll, MaxStale: cfg.CacheMaxStale, Log: log})
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, cache.Close)
	out := influx.New(cfg.Influx)
	g.closers = append(g.closers, func() error { out.Close(); return nil })
	if g.spool, err = spool.Open(cfg.Spool); err != nil {
		return nil, err
	}
	g.closers = append(g.closers, g.spool.Close)
	if st := g.spool.Stats(); st.Points > 0 {
		log.Info("spool holds points from an earlier run; forwarding them", "points", st.Points, "bytes", st.Bytes)
	}
	guard := g.schemaGuard(cfg)
	cfg.Server.Bucket = cfg.Influx.Bucket
	g.metrics, g.proxy, g.trusted = m, cfg.ProxyProtocol, cfg.Server.TrustedProxies
	limits, limitsStatus, err := g.limits(ctx, cfg, m, log)
	if err != nil {
		return nil, err
	}
	m.WatchSpool(func() (int64, int64) { st := g.spool.Stats(); return st.Bytes, st.Points })
	m.WatchKeystore(cache.Behind)
	// Usage is flushed after the forwarder has drained, before the key
	// store closes.
	recorder := usage.NewRecorder(g.keys, log)
	g.closers = append(g.closers, background(func(ctx context.Context) { recorder.Run(ctx, cfg.UsageFlush) }))
	fo := g.forwardOptions(cfg, m, guard)
	fo.DeadLettered = watch.Refused
	g.fwd = forward.New(g.spool, out, fo, log)
	stopForwarder := background(g.fwd.Run)
	g.closers = append(g.closers, func() error { stopForwarder(); return g.drainSpool() })
	g.handlers, err = server.New(cfg.Server, server.Deps{
		Log:         log,
		Keys:        cache,
		Admin:       g.keys,
		DeadLetters: &deadLetters{file: deadletter.NewFile(fo.DeadLetter, fo.DeadLetterMaxBytes), out: out, extra: fo.MaxExtraWrites},
		Writer:      g.spool,
		Schema:      guard,
		Usage:       recorder,
		Metrics:     m,
		AccessLog:   server.NewAccessLog(access, cfg.TextLog, cfg.AccessLog),
		Pacer:       g.pacer(cfg),
		Limits:      limits,
		Status:      g.status(out, cache, limitsStatus),
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// destination is the bucket a key's points go to when it names bucket:
// its own, or the gateway's for "".
func (c *Config) destination(bucket string) string {
	if bucket == "" {
		return c.Influx.Bucket
	}
	return bucket
}

// quarantineWatch returns what quarantines the keys whose points InfluxDB
// keeps refusing, counted in m; Close waits for the quarantines it began
// to be written before the key store closes.
func (g *Gateway) quarantineWatch(cfg Config, m *metrics.Metrics, log *slog.Logger) *quarantine.Watch {
	watch := quarantine.New(g.keys, quarantine.Options{Limit: cfg.QuarantineAfter, Window: cfg.QuarantineWindow,
		Now: cfg.Server.Now, Log: log, Quarantined: func(keystore.Key) { m.KeysQuarantined.Inc() }})
	g.closers = append(g.closers, func() error { watch.Wait(); return nil })
	return watch
}

// setDefaults fills in the settings left zero.
func (c *Config) setDefaults() {
	if c.UsageFlush <= 0 {
		c.UsageFlush = time.Second
	}
	if c.Server.Now == nil {
		c.Server.Now = time.Now
	}
	if c.SchemaFields <= 0 {
		c.SchemaFields = 100000
	}
}

// schemaGuard returns the guard of the bucket's field types, or a nil one,
// which checks nothing, when it is off.
func (g *Gateway) schemaGuard(cfg Config) *schema.Guard {
	if cfg.NoSchemaGuard {
		return nil
	}
	return schema.New(cfg.SchemaFields)
}

// forwardOptions are cfg's forwarder settings with the gateway's dead-letter
// file and its metrics; the field types InfluxDB names in its refusals
// teach guard.
func (g *Gateway) forwardOptions(cfg Config, m *metrics.Metrics, guard *schema.Guard) forward.Options {
	o := cfg.Forward
	o.DeadLetter = filepath.Join(cfg.Spool.Dir, "dead-letter.jsonl")
	o.Bucket = cfg.Influx.Bucket
	o.Conflict = func(bucket, measurement, field, typ string) {
		guard.Learn(cfg.destination(bucket), measurement, field, schema.ParseType(typ))
	}
	o.Observe = func(points int, latency time.Duration) {
		m.PointsForwarded.Add(float64(points))
		m.ForwardDuration.Observe(latency.Seconds())
	}
	o.Rejected = func(points int) { m.PointsDeadLettered.Add(float64(points)) }
	o.Failed = func(error) { m.ForwardErrors.Inc() }
	return o
}

// pacer returns what holds writes back while the forwarder catches up, or
// one that never does when pacing is off.
func (g *Gateway) pacer(cfg Config) server.Pacer {
	if cfg.PaceBatches <= 0 {
		return unpaced{}
	}
	return forward.NewPacer(g.spool.Backlog, g.spool.Acked, g.fwd.Healthy,
		int64(cfg.PaceBatches)*int64(g.fwd.BatchPoints()), time.Second)
}

// limits returns what limits keys' rates and failed authentications, and
// what /readyz shows of it: the cluster's limits through Redis with
// Config.Limits, else this replica's own.
func (g *Gateway) limits(ctx context.Context, cfg Config, m *metrics.Metrics, log *slog.Logger) (server.Limits, func() map[string]any, error) {
	s := cfg.Server
	if cfg.Limits == "" {
		m.SetLimitsState(metrics.LimitsLocal)
		local := limit.Local{Keys: limit.NewKeys(s.DefaultRate, s.DefaultBurst, s.Now), Failures: limit.NewFailures(s.AuthFailRate, s.AuthFailBurst, s.Now)}
		return local, func() map[string]any { return map[string]any{"state": metrics.LimitsLocal} }, nil
	}
	shared, err := clusterlimit.Open(ctx, clusterlimit.Options{URL: cfg.Limits, FailClosed: cfg.LimitsFailClosed, Node: cfg.Node,
		DefaultRate: s.DefaultRate, DefaultBurst: s.DefaultBurst, AuthFailRate: s.AuthFailRate, AuthFailBurst: s.AuthFailBurst,
		Now: s.Now, Log: log, Metrics: m})
	if err != nil {
		return nil, nil, err
	}
	g.closers = append(g.closers, shared.Close)
	return shared, shared.Status, nil
}

// unpaced never holds a write back.
type unpaced struct{}

func (unpaced) Wait(context.Context) time.Duration { return 0 }

// status is what /readyz shows beside its checks: the spool's depth, the
// forwarder's state, whether InfluxDB answers, how far behind its key
// store the key cache is, and the rate limits' state.
func (g *Gateway) status(out *influx.Writer, cache *keystore.Cache, limits func() map[string]any) func(ctx context.Context) map[string]any {
	return func(ctx context.Context) map[string]any {
		influxState := "ok"
		if err := out.Ping(ctx); err != nil {
			influxState = err.Error()
		}
		return map[string]any{"spool": g.spool.Stats(), "forwarder": g.fwd.Status(), "influxdb": influxState,
			"keystore": cache.Status(), "limits": limits()}
	}
}

// background runs fn in a goroutine and returns what stops it: cancel its
// context and wait for it to return.
func background(fn func(ctx context.Context)) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { fn(ctx); close(done) }()
	return func() error { cancel(); <-done; return nil }
}

// drainSpool forwards what the spool holds, with the forwarder stopped,
// for up to the drain timeout, and leaves the rest on disk.
func (g *Gateway) drainSpool() error {
	ctx, cancel := context.WithTimeout(context.Background(), g.drain)
	defer cancel()
	g.log.Info("stopped", "points_left_in_spool", g.fwd.Drain(ctx))
	return nil
}

// Listener wraps ln, the listener Handler is served on: with
// Config.ProxyProtocol, the proxies in Server.TrustedProxies must open
// each connection with a PROXY protocol header naming the client (see
// server.ProxyProtocol); otherwise ln is returned as it is.
func (g *Gateway) Listener(ln net.Listener) net.Listener {
	if !g.proxy {
		return ln
	}
	return server.ProxyProtocol(ln, g.trusted, g.metrics)
}

// Handler serves what clients reach: the write endpoints, health checks
// and metrics.
func (g *Gateway) Handler() http.Handler { return g.handlers.Ingest }

// AdminHandler serves the admin API, the web console and the detailed
// readiness report, for a listener operators keep private.
func (g *Gateway) AdminHandler() http.Handler { return g.handlers.Admin }

// Keys returns the key store the gateway reads, for managing keys in the
// same process; its changes reach requests within Config.KeyPoll on
// SQLite, and as soon as PostgreSQL notifies them.
func (g *Gateway) Keys() *keystore.Store { return g.keys }

// Close stops the gateway once the caller has stopped serving its handler:
// the forwarder delivers what the spool holds for up to Config.DrainTimeout
// and leaves the rest on disk (logged as points_left_in_spool), usage is
// flushed, and the spool and stores are closed. Closing twice does nothing.
func (g *Gateway) Close() error { return g.stop() }

// stop runs the closers, last first, and joins their errors.
func (g *Gateway) stop() error {
	var errs []error
	for i := len(g.closers) - 1; i >= 0; i-- {
		errs = append(errs, g.closers[i]())
	}
	g.closers = nil
	return errors.Join(errs...)
}

// deadLetters are the gateway's dead letters, for the admin API: its
// spool's dead-letter file, replayed through its InfluxDB writer.
type deadLetters struct {
	file  *deadletter.File
	out   *influx.Writer
	extra int
}

// Read returns the letters, oldest first. The context is unused: reading
// a local file is not cancelled.
func (d *deadLetters) Read(context.Context) ([]deadletter.Letter, error) { return d.file.Read() }

// Replay sends again the letters sel keeps (all when nil); see
// forward.Replay.
func (d *deadLetters) Replay(ctx context.Context, sel func(deadletter.Letter) bool) (forward.ReplayReport, error) {
	return forward.Replay(ctx, d.file, d.out, forward.ReplayOptions{Select: sel, MaxExtraWrites: d.extra})
}

// Backlog returns the points accepted that InfluxDB has not confirmed yet.
func (g *Gateway) Backlog() int64 { return g.spool.Backlog() }
