package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/metricgate/metricgate/pkg/clusterlimit"
	"github.com/metricgate/metricgate/pkg/gateway"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/server"
	"github.com/metricgate/metricgate/pkg/spool"
)

// options are the apiserver's settings, from flags with environment
// fallbacks: the gateway's own and how it is served.
type options struct {
	gateway         gateway.Config
	listen          string
	adminListen     string
	adminDefault    bool // --admin-listen is the default, set by neither flag nor environment
	adminInsecure   bool
	shutdownTimeout time.Duration
	logFormat       string
	accessLog       string
	fsync           string
	debugListen     string
	memoryLimit     int64
	tlsCert         string
	tlsKey          string
	schemaGuard     bool
	limitsFail      string
}

// parseFlags reads args, taking defaults from the environment through getenv.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{gateway: gateway.Config{Server: server.DefaultConfig()}}
	g := &o.gateway
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("apiserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: apiserver [flags]\n\nmetricgate's HTTP gateway: POST /api/submit with an X-API-Key header.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.listen, "listen", env("APISERVER_LISTEN", ":5002"), "address to listen on (env APISERVER_LISTEN)")
	fs.StringVar(&o.adminListen, "admin-listen", env("APISERVER_ADMIN_LISTEN", "127.0.0.1:5003"), "address of the admin API and web console; empty turns them off (env APISERVER_ADMIN_LISTEN)")
	fs.BoolVar(&o.adminInsecure, "admin-insecure", false, "let --admin-listen be a non-loopback address without --tls-cert (admin keys then cross the network in clear)")
	fs.StringVar(&g.DB, "db", env("KEYSTORE_DB", "api_keys.db"), "key store keyctl uses: a SQLite file, or postgres://user:password@host:port/db to share one with other gateways (env KEYSTORE_DB)")
	fs.DurationVar(&g.DBTimeout, "db-timeout", 5*time.Second, "how long to wait for PostgreSQL on each attempt to connect; at start, the apiserver exits if it cannot connect within it")
	fs.StringVar(&g.Node, "node-name", env("APISERVER_NODE_NAME", hostname()), "this gateway's name among those sharing a PostgreSQL key store, recorded in the audit log and in key usage (env APISERVER_NODE_NAME)")
	fs.DurationVar(&g.CacheMaxStale, "cache-max-stale", 5*time.Minute, "how long to keep accepting the keys held in memory after last hearing from the key store (PostgreSQL down); after that they get 503")
	fs.StringVar(&g.Influx.URL, "influx-url", env("INFLUX_URL", "http://127.0.0.1:8086"), "InfluxDB URL (env INFLUX_URL)")
	fs.StringVar(&g.Influx.Token, "influx-token", env("INFLUX_TOKEN", ""), "InfluxDB token; for 1.x empty or user:pass (env INFLUX_TOKEN)")
	fs.StringVar(&g.Influx.Org, "influx-org", env("INFLUX_ORG", ""), "InfluxDB organization; ignored by 1.x (env INFLUX_ORG)")
	fs.StringVar(&g.Influx.Bucket, "influx-bucket", env("INFLUX_BUCKET", "metricgate"), "InfluxDB bucket; for 1.x db or db/rp (env INFLUX_BUCKET)")
	fs.StringVar(&g.Server.Measurement, "measurement", g.Server.Measurement, "measurement for points that name none")
	fs.StringVar(&g.Server.HostTag, "host-tag", g.Server.HostTag, "tag set to the key's hostname on every point")
	fs.Int64Var(&g.Server.MaxBody, "max-body", g.Server.MaxBody, "largest request body in bytes, after decompression")
	fs.IntVar(&g.Server.MaxPoints, "max-points", g.Server.MaxPoints, "largest number of points in one request")
	fs.Int64Var(&g.Server.BodyMemory, "body-memory", g.Server.BodyMemory, "bytes of request bodies held at once (a body of unknown size counts as --max-body, one under 64 KiB not at all); a request waits up to 10 s for room, then gets 503; 0 for no bound")
	fs.Int64Var(&g.Server.BodyMemoryPerKey, "body-memory-per-key", g.Server.BodyMemoryPerKey, "bytes of request bodies one key may hold at once, counted as --body-memory counts them; past it the key's request waits up to 10 s, then gets 429; 0 for no bound")
	fs.DurationVar(&g.Server.BodyReadTimeout, "body-read-timeout", g.Server.BodyReadTimeout, "how long a body counted in --body-memory has to arrive once it has room; a slower sender gets 408; 0 leaves it to the 30 s read timeout")
	fs.Func("trusted-proxy", "address or CIDR of a proxy whose X-Forwarded-For is believed (repeatable; a range wider than /8 or IPv6 /32 is logged as a warning)", func(s string) error {
		p, err := server.ParseTrustedProxy(s)
		g.Server.TrustedProxies = append(g.Server.TrustedProxies, p)
		return err
	})
	fs.BoolVar(&g.ProxyProtocol, "proxy-protocol", false, "the proxies in --trusted-proxy open each connection to --listen with a PROXY protocol header (v1 or v2) naming the client; others are served as they come, and a header from them closes the connection")
	fs.StringVar(&g.Limits, "limits", env("APISERVER_LIMITS", ""), "redis://host:port/db: share the keys' rate limits and the failed-authentication throttle with every replica using that Redis; empty: each replica limits alone (N replicas allow N times the limits) (env APISERVER_LIMITS)")
	fs.StringVar(&o.limitsFail, "limits-fail", "open", "while the --limits Redis is unreachable: open (each replica limits keys alone at limit/replicas) or closed (limited keys get 429 with Retry-After)")
	addIsolationFlags(fs, o)
	fs.Float64Var(&g.Server.DefaultRate, "default-rate", g.Server.DefaultRate, "field values per second for keys without their own rate; 0 means no limit")
	fs.IntVar(&g.Server.DefaultBurst, "default-burst", g.Server.DefaultBurst, "burst in field values for keys without their own; 0 means one second's worth")
	fs.Float64Var(&g.Server.AuthFailRate, "auth-fail-rate", g.Server.AuthFailRate, "failed authentications per second an address regains after its burst")
	fs.IntVar(&g.Server.AuthFailBurst, "auth-fail-burst", g.Server.AuthFailBurst, "failed authentications an address may make before it gets 429; 0 turns throttling off")
	fs.DurationVar(&g.Server.AdminKeyMaxTTL, "admin-key-max-ttl", g.Server.AdminKeyMaxTTL, "longest an admin key made or extended over the admin API may work (keyctl is not bound by it)")
	fs.DurationVar(&g.UsageFlush, "usage-flush", time.Second, "how often key usage (last use, counts) is written to the key store")
	fs.StringVar(&g.Spool.Dir, "spool-dir", env("APISERVER_SPOOL_DIR", "spool"), "directory of the durable spool of accepted points (env APISERVER_SPOOL_DIR)")
	fs.Int64Var(&g.Spool.MaxBytes, "spool-max-bytes", 1<<30, "spool size at which new points get 503 until InfluxDB catches up")
	fs.StringVar(&o.fsync, "fsync", "always", "always: acknowledge after fdatasync (survives a machine crash); interval: after the write, fdatasync every --fsync-interval (survives a process crash)")
	fs.DurationVar(&g.Spool.SyncInterval, "fsync-interval", 100*time.Millisecond, "how often the spool is synced with --fsync interval")
	fs.IntVar(&g.Forward.BatchPoints, "batch-points", 5000, "most points in one write to InfluxDB")
	fs.DurationVar(&g.Forward.BatchWait, "batch-wait", time.Second, "longest a point waits for its batch to fill")
	fs.IntVar(&g.Forward.Workers, "forward-workers", 4, "batches written to InfluxDB at once")
	fs.IntVar(&g.PaceBatches, "pace-batches", 8, "while InfluxDB takes writes, hold new writes back (up to 1 s each) once the spool's backlog has grown by this many batches; 0 never holds them back")
	fs.DurationVar(&g.DrainTimeout, "drain-timeout", 10*time.Second, "on SIGTERM, how long to keep forwarding the spool before leaving the rest on disk")
	fs.StringVar(&o.tlsCert, "tls-cert", env("APISERVER_TLS_CERT", ""), "serve HTTPS with this certificate (PEM) instead of HTTP (env APISERVER_TLS_CERT)")
	fs.StringVar(&o.tlsKey, "tls-key", env("APISERVER_TLS_KEY", ""), "the private key (PEM) for --tls-cert (env APISERVER_TLS_KEY)")
	fs.Int64Var(&o.memoryLimit, "memory-limit", 64<<20, "soft limit in bytes for the Go heap: below it the collector runs less often (GOGC 400), near it harder; 0 for none; GOMEMLIMIT and GOGC in the environment win")
	fs.StringVar(&o.debugListen, "debug-listen", "", "if set, serve Go's pprof profiles on this address (keep it on loopback)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long to wait for requests in flight on SIGTERM")
	fs.StringVar(&o.logFormat, "log-format", env("APISERVER_LOG_FORMAT", "json"), "log format: json or text (env APISERVER_LOG_FORMAT)")
	fs.StringVar(&o.accessLog, "access-log", env("APISERVER_ACCESS_LOG", "all"), "which requests get an access log line: all, errors (answered 400 or above) or none (env APISERVER_ACCESS_LOG)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.adminDefault = getenv("APISERVER_ADMIN_LISTEN") == ""
	fs.Visit(func(f *flag.Flag) { o.adminDefault = o.adminDefault && f.Name != "admin-listen" })
	if err := o.check(); err != nil {
		return nil, err
	}
	return o, nil
}

// check refuses settings that cannot work together and derives the
// gateway's from the apiserver's (the sync mode, the access log's format).
func (o *options) check() error {
	g := &o.gateway
	if g.Server.MaxBody <= 0 || g.Server.MaxPoints <= 0 {
		return errors.New("--max-body and --max-points must be positive")
	}
	if g.DBTimeout <= 0 || g.CacheMaxStale <= 0 {
		return errors.New("--db-timeout and --cache-max-stale must be positive")
	}
	if g.Server.BodyMemory < 0 || g.Server.BodyMemoryPerKey < 0 || g.Server.BodyReadTimeout < 0 {
		return errors.New("--body-memory, --body-memory-per-key and --body-read-timeout must be 0 (no bound) or positive")
	}
	if err := checkBudgets(g); err != nil {
		return err
	}
	g.NoSchemaGuard = !o.schemaGuard
	if g.Server.DefaultRate < 0 || g.Server.DefaultBurst < 0 || g.Server.AuthFailRate <= 0 || g.Server.AuthFailBurst < 0 || g.UsageFlush <= 0 {
		return errors.New("rates, bursts and --usage-flush must not be negative (--auth-fail-rate positive)")
	}
	if g.Server.AdminKeyMaxTTL <= 0 || g.Server.AdminKeyMaxTTL > keystore.MaxLifetime {
		return fmt.Errorf("--admin-key-max-ttl must be positive and at most %s (100 years), got %s", keystore.MaxLifetime, g.Server.AdminKeyMaxTTL)
	}
	if err := o.checkCluster(); err != nil {
		return err
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if o.adminListen != "" && o.tlsCert == "" && !o.adminInsecure && !isLoopback(o.adminListen) {
		return fmt.Errorf("--admin-listen %s is not a loopback address: serve it with --tls-cert and --tls-key, or accept plain HTTP with --admin-insecure", o.adminListen)
	}
	switch o.fsync {
	case "always":
		g.Spool.Sync = spool.SyncAlways
	case "interval":
		g.Spool.Sync = spool.SyncInterval
	default:
		return fmt.Errorf("--fsync %q: want always or interval", o.fsync)
	}
	if g.Spool.MaxBytes <= 0 || g.Spool.SyncInterval <= 0 || g.Forward.BatchPoints <= 0 || g.Forward.BatchWait <= 0 || g.Forward.Workers <= 0 {
		return errors.New("--spool-max-bytes, --fsync-interval, --batch-points, --batch-wait and --forward-workers must be positive")
	}
	if g.PaceBatches != 0 && g.PaceBatches < g.Forward.Workers+2 {
		// Fewer would keep the forwarder from filling its batches.
		return fmt.Errorf("--pace-batches %d: want 0 or at least --forward-workers + 2 (%d)", g.PaceBatches, g.Forward.Workers+2)
	}
	if o.logFormat != "json" && o.logFormat != "text" {
		return fmt.Errorf("--log-format %q: want json or text", o.logFormat)
	}
	g.TextLog = o.logFormat == "text"
	level, err := server.ParseAccessLevel(o.accessLog)
	if err != nil {
		return fmt.Errorf("--access-log %w", err)
	}
	g.AccessLog = level
	return nil
}

// checkCluster refuses cluster settings that cannot work: a --limits that
// is not a Redis URL (named without a password it may hold), an unknown
// --limits-fail, --proxy-protocol without a proxy to trust.
func (o *options) checkCluster() error {
	g := &o.gateway
	if g.Limits != "" {
		if _, err := clusterlimit.ParseURL(g.Limits); err != nil {
			return fmt.Errorf("--limits: %w", err)
		}
	}
	switch o.limitsFail {
	case "open", "closed":
		g.LimitsFailClosed = o.limitsFail == "closed"
	default:
		return fmt.Errorf("--limits-fail %q: want open or closed", o.limitsFail)
	}
	if g.ProxyProtocol && len(g.Server.TrustedProxies) == 0 {
		return errors.New("--proxy-protocol needs --trusted-proxy: the addresses of the proxies that send the header")
	}
	return nil
}

// addIsolationFlags adds the flags that bound what one key can do to the
// others: the point budgets, the time window, the series budget, the
// schema guard, the dead letters and the quarantine.
func addIsolationFlags(fs *flag.FlagSet, o *options) {
	g := &o.gateway
	lim := &g.Server.Limits
	fs.IntVar(&lim.MaxFields, "max-fields", lim.MaxFields, "most fields in one point; a point with more gets 400; 0 for no cap")
	fs.IntVar(&lim.MaxTags, "max-tags", lim.MaxTags, "most tags in one point; a point with more gets 400; 0 for no cap")
	fs.IntVar(&lim.MaxNameLen, "max-name-len", lim.MaxNameLen, "longest measurement, tag key or field key, in bytes")
	fs.IntVar(&lim.MaxValueLen, "max-value-len", lim.MaxValueLen, "longest tag value or string field value, in bytes")
	fs.DurationVar(&lim.MaxFuture, "max-future", lim.MaxFuture, "how far ahead of the gateway's clock a point's time may be; later points get 400; 0 for no bound")
	fs.DurationVar(&lim.MaxPast, "max-past", lim.MaxPast, "how far behind the gateway's clock a point's time may be (set it to the retention); older points get 400; 0 for no bound")
	fs.IntVar(&g.Server.MaxSeriesPerKey, "max-series-per-key", g.Server.MaxSeriesPerKey, "distinct series (measurement and tags) a key without a budget of its own (keyctl --max-series) may write per clock hour; a request with a new one past it gets 429; 0 for no cap")
	fs.BoolVar(&o.schemaGuard, "schema-guard", true, "refuse at the door (400) a point whose field type conflicts with what the bucket it goes to holds")
	fs.Int64Var(&g.Forward.DeadLetterMaxBytes, "dead-letter-max-bytes", 64<<20, "size at which <spool-dir>/dead-letter.jsonl is rotated to dead-letter.jsonl.1, replacing the one before")
	fs.IntVar(&g.Forward.MaxExtraWrites, "max-extra-writes", 16, "writes to InfluxDB spent on one refused batch to find the lines it dropped, beyond the first")
	fs.IntVar(&g.QuarantineAfter, "quarantine-after", 100, "quarantine a key once InfluxDB has refused this many of its points within --quarantine-window: its writes get 429 until an admin releases it (keyctl release); 0 never does")
	fs.DurationVar(&g.QuarantineWindow, "quarantine-window", time.Minute, "the time --quarantine-after counts a key's refused points over")
}

// hostname is the default --node-name: the machine's name, or "unknown".
func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

// checkBudgets refuses negative point budgets and forwarder bounds.
func checkBudgets(g *gateway.Config) error {
	lim := g.Server.Limits
	if lim.MaxFields < 0 || lim.MaxTags < 0 || lim.MaxFuture < 0 || lim.MaxPast < 0 || g.Server.MaxSeriesPerKey < 0 {
		return errors.New("--max-fields, --max-tags, --max-future, --max-past and --max-series-per-key must be 0 (no bound) or positive")
	}
	if lim.MaxNameLen <= 0 || lim.MaxValueLen <= 0 || g.Forward.DeadLetterMaxBytes <= 0 || g.Forward.MaxExtraWrites < 0 {
		return errors.New("--max-name-len, --max-value-len and --dead-letter-max-bytes must be positive, --max-extra-writes not negative")
	}
	if g.QuarantineAfter < 0 || g.QuarantineWindow <= 0 {
		return errors.New("--quarantine-after must be 0 (never) or positive, --quarantine-window positive")
	}
	return nil
}

// run starts the gateway and serves until ctx is cancelled, then shuts down
// gracefully: it finishes the requests in flight and drains the spool for
// up to --drain-timeout. Its log line "listening" gives the address it
// bound, so a caller may pass --listen 127.0.0.1:0.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	setMemoryLimit(o.memoryLimit, getenv)
	logOut := newLogBuffer(stderr, 100*time.Millisecond)
	defer logOut.Close()
	log := newLogger(logOut, o.logFormat)
	gw, err := gateway.New(ctx, o.gateway, log, logOut)
	if err != nil {
		return err
	}
	defer gw.Close()
	servers, err := listen(o, gw, log)
	if err != nil {
		return err
	}
	if o.debugListen != "" {
		stopDebug, err := serveDebug(o.debugListen, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	return serve(ctx, servers, o.shutdownTimeout, log)
}
