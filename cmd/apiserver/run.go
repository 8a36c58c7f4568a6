package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/metricgate/metricgate/pkg/forward"
	"github.com/metricgate/metricgate/pkg/influx"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/metrics"
	"github.com/metricgate/metricgate/pkg/server"
	"github.com/metricgate/metricgate/pkg/spool"
	"github.com/metricgate/metricgate/pkg/usage"
)

// options are the apiserver's settings, from flags with environment
// fallbacks.
type options struct {
	listen          string
	db              string
	influx          influx.Config
	cfg             server.Config
	shutdownTimeout time.Duration
	usageFlush      time.Duration
	logFormat       string
	spool           spool.Options
	fsync           string
	forward         forward.Options
	drainTimeout    time.Duration
	paceBatches     int
	debugListen     string
	memoryLimit     int64
	tlsCert         string
	tlsKey          string
}

// parseFlags reads args, taking defaults from the environment through getenv.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{cfg: server.DefaultConfig()}
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
	fs.StringVar(&o.db, "db", env("KEYSTORE_DB", "api_keys.db"), "key store database, the file keyctl uses (env KEYSTORE_DB)")
	fs.StringVar(&o.influx.URL, "influx-url", env("INFLUX_URL", "http://127.0.0.1:8086"), "InfluxDB URL (env INFLUX_URL)")
	fs.StringVar(&o.influx.Token, "influx-token", env("INFLUX_TOKEN", ""), "InfluxDB token; for 1.x empty or user:pass (env INFLUX_TOKEN)")
	fs.StringVar(&o.influx.Org, "influx-org", env("INFLUX_ORG", ""), "InfluxDB organization; ignored by 1.x (env INFLUX_ORG)")
	fs.StringVar(&o.influx.Bucket, "influx-bucket", env("INFLUX_BUCKET", "metricgate"), "InfluxDB bucket; for 1.x db or db/rp (env INFLUX_BUCKET)")
	fs.StringVar(&o.cfg.Measurement, "measurement", o.cfg.Measurement, "measurement for points that name none")
	fs.StringVar(&o.cfg.HostTag, "host-tag", o.cfg.HostTag, "tag set to the key's hostname on every point")
	fs.Int64Var(&o.cfg.MaxBody, "max-body", o.cfg.MaxBody, "largest request body in bytes, after decompression")
	fs.IntVar(&o.cfg.MaxPoints, "max-points", o.cfg.MaxPoints, "largest number of points in one request")
	fs.Int64Var(&o.cfg.BodyMemory, "body-memory", o.cfg.BodyMemory, "bytes of request bodies held at once (a body of unknown size counts as --max-body, one under 64 KiB not at all); a request waits up to 10 s for room, then gets 503; 0 for no bound")
	fs.Func("trusted-proxy", "CIDR of a proxy whose X-Forwarded-For is believed (repeatable)", func(s string) error {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return fmt.Errorf("not a CIDR range or address: %q", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		o.cfg.TrustedProxies = append(o.cfg.TrustedProxies, p.Masked())
		return nil
	})
	fs.Float64Var(&o.cfg.DefaultRate, "default-rate", o.cfg.DefaultRate, "points per second for keys without their own rate; 0 means no limit")
	fs.IntVar(&o.cfg.DefaultBurst, "default-burst", o.cfg.DefaultBurst, "burst in points for keys without their own; 0 means one second's worth")
	fs.Float64Var(&o.cfg.AuthFailRate, "auth-fail-rate", o.cfg.AuthFailRate, "failed authentications per second an address regains after its burst")
	fs.IntVar(&o.cfg.AuthFailBurst, "auth-fail-burst", o.cfg.AuthFailBurst, "failed authentications an address may make before it gets 429; 0 turns throttling off")
	fs.DurationVar(&o.usageFlush, "usage-flush", time.Second, "how often key usage (last use, counts) is written to the key store")
	fs.StringVar(&o.spool.Dir, "spool-dir", env("APISERVER_SPOOL_DIR", "spool"), "directory of the durable spool of accepted points (env APISERVER_SPOOL_DIR)")
	fs.Int64Var(&o.spool.MaxBytes, "spool-max-bytes", 1<<30, "spool size at which new points get 503 until InfluxDB catches up")
	fs.StringVar(&o.fsync, "fsync", "always", "always: acknowledge after fdatasync (survives a machine crash); interval: after the write, fdatasync every --fsync-interval (survives a process crash)")
	fs.DurationVar(&o.spool.SyncInterval, "fsync-interval", 100*time.Millisecond, "how often the spool is synced with --fsync interval")
	fs.IntVar(&o.forward.BatchPoints, "batch-points", 5000, "most points in one write to InfluxDB")
	fs.DurationVar(&o.forward.BatchWait, "batch-wait", time.Second, "longest a point waits for its batch to fill")
	fs.IntVar(&o.forward.Workers, "forward-workers", 4, "batches written to InfluxDB at once")
	fs.IntVar(&o.paceBatches, "pace-batches", 8, "while InfluxDB takes writes, hold new writes back (up to 1 s each) once the spool's backlog has grown by this many batches; 0 never holds them back")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 10*time.Second, "on SIGTERM, how long to keep forwarding the spool before leaving the rest on disk")
	fs.StringVar(&o.tlsCert, "tls-cert", env("APISERVER_TLS_CERT", ""), "serve HTTPS with this certificate (PEM) instead of HTTP (env APISERVER_TLS_CERT)")
	fs.StringVar(&o.tlsKey, "tls-key", env("APISERVER_TLS_KEY", ""), "the private key (PEM) for --tls-cert (env APISERVER_TLS_KEY)")
	fs.Int64Var(&o.memoryLimit, "memory-limit", 64<<20, "soft limit in bytes for the Go heap: below it the collector runs less often (GOGC 400), near it harder; 0 for none; GOMEMLIMIT and GOGC in the environment win")
	fs.StringVar(&o.debugListen, "debug-listen", "", "if set, serve Go's pprof profiles on this address (keep it on loopback)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long to wait for requests in flight on SIGTERM")
	fs.StringVar(&o.logFormat, "log-format", env("APISERVER_LOG_FORMAT", "json"), "log format: json or text (env APISERVER_LOG_FORMAT)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.cfg.MaxBody <= 0 || o.cfg.MaxPoints <= 0 {
		return nil, errors.New("--max-body and --max-points must be positive")
	}
	if o.cfg.BodyMemory < 0 {
		return nil, errors.New("--body-memory must be 0 (no bound) or positive")
	}
	if o.cfg.DefaultRate < 0 || o.cfg.DefaultBurst < 0 || o.cfg.AuthFailRate <= 0 || o.cfg.AuthFailBurst < 0 || o.usageFlush <= 0 {
		return nil, errors.New("rates, bursts and --usage-flush must not be negative (--auth-fail-rate positive)")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	switch o.fsync {
	case "always":
		o.spool.Sync = spool.SyncAlways
	case "interval":
		o.spool.Sync = spool.SyncInterval
	default:
		return nil, fmt.Errorf("--fsync %q: want always or interval", o.fsync)
	}
	if o.spool.MaxBytes <= 0 || o.spool.SyncInterval <= 0 || o.forward.BatchPoints <= 0 || o.forward.BatchWait <= 0 || o.forward.Workers <= 0 {
		return nil, errors.New("--spool-max-bytes, --fsync-interval, --batch-points, --batch-wait and --forward-workers must be positive")
	}
	if o.paceBatches != 0 && o.paceBatches < o.forward.Workers+2 {
		// Fewer would keep the forwarder from filling its batches.
		return nil, fmt.Errorf("--pace-batches %d: want 0 or at least --forward-workers + 2 (%d)", o.paceBatches, o.forward.Workers+2)
	}
	if o.logFormat != "json" && o.logFormat != "text" {
		return nil, fmt.Errorf("--log-format %q: want json or text", o.logFormat)
	}
	return o, nil
}

// pprofHandler serves Go's profiles, for measuring before optimising.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	return mux
}

// run starts the gateway and serves until ctx is cancelled, then shuts down
// gracefully, finishing requests in flight.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.memoryLimit > 0 && getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(o.memoryLimit)
		// Below the limit the collector may run less often: a small live
		// heap with GOGC=100 made it collect many times a second under
		// load. In the benchmark this raised one-point requests/s by
		// about 10% and left peak RSS under batches unchanged (94 MB).
		if getenv("GOGC") == "" {
			debug.SetGCPercent(400)
		}
	}
	logOut := newLogBuffer(stderr, 100*time.Millisecond)
	defer logOut.Close()
	var handler slog.Handler = slog.NewJSONHandler(logOut, nil)
	if o.logFormat == "text" {
		handler = slog.NewTextHandler(logOut, nil)
	}
	log := slog.New(handler)

	keys, err := keystore.Open(ctx, o.db)
	if err != nil {
		return err
	}
	defer keys.Close()
	// Keys are read from SQLite once, then from memory until anything is
	// committed to the file; a change by keyctl or the admin API reaches
	// requests within the poll interval. A poll is one PRAGMA query on an
	// idle connection: 40 a second cost nothing measurable.
	keyCache, err := keystore.NewCache(ctx, keys, 25*time.Millisecond)
	if err != nil {
		return err
	}
	defer keyCache.Close()
	influxOut := influx.New(o.influx)
	defer influxOut.Close()
	sp, err := spool.Open(o.spool)
	if err != nil {
		return err
	}
	defer sp.Close()
	if st := sp.Stats(); st.Points > 0 {
		log.Info("spool holds points from an earlier run; forwarding them", "points", st.Points, "bytes", st.Bytes)
	}
	m := metrics.New()
	o.cfg.Metrics = m
	m.WatchSpool(func() (int64, int64) { st := sp.Stats(); return st.Bytes, st.Points })
	o.forward.DeadLetter = filepath.Join(o.spool.Dir, "dead-letter.jsonl")
	o.forward.Observe = func(points int, latency time.Duration) {
		m.PointsForwarded.Add(float64(points))
		m.ForwardDuration.Observe(latency.Seconds())
	}
	o.forward.Rejected = func(points int) { m.PointsDeadLettered.Add(float64(points)) }
	o.forward.Failed = func(error) { m.ForwardErrors.Inc() }
	fwd := forward.New(sp, influxOut, o.forward, log)
	fwdCtx, stopFwd := context.WithCancel(context.Background())
	fwdDone := make(chan struct{})
	go func() { fwd.Run(fwdCtx); close(fwdDone) }()
	defer func() { stopFwd(); <-fwdDone }()
	if o.paceBatches > 0 {
		o.cfg.Pacer = forward.NewPacer(sp.Backlog, fwd.Healthy,
			int64(o.paceBatches)*int64(o.forward.BatchPoints), time.Second)
	}
	o.cfg.Details = func(ctx context.Context) map[string]any {
		influxState := "ok"
		if err := influxOut.Ping(ctx); err != nil {
			influxState = err.Error()
		}
		return map[string]any{"spool": sp.Stats(), "forwarder": fwd.Status(), "influxdb": influxState}
	}
	usageCtx, stopUsage := context.WithCancel(context.Background())
	usageDone := make(chan struct{})
	recorder := usage.NewRecorder(keys, log)
	go func() { recorder.Run(usageCtx, o.usageFlush); close(usageDone) }()
	// Runs after the server has stopped: the last usage is flushed before
	// the key store closes.
	defer func() { stopUsage(); <-usageDone }()

	var tlsConfig *tls.Config
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	// The admin API changes keys through the store itself; its commits
	// reach keyCache through the same change polling as keyctl's.
	o.cfg.Admin = keys
	o.cfg.AccessLog = server.NewAccessLog(logOut, o.logFormat == "text")
	srv := &http.Server{
		Handler:           server.New(log, o.cfg, keyCache, sp, recorder),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelWarn),
		TLSConfig:         tlsConfig,
	}
	log.Info("listening", "addr", ln.Addr().String(), "db", o.db, "influx_url", o.influx.URL,
		"influx_bucket", o.influx.Bucket, "max_body", o.cfg.MaxBody, "max_points", o.cfg.MaxPoints)

	if o.debugListen != "" {
		dln, err := net.Listen("tcp", o.debugListen)
		if err != nil {
			return err
		}
		dbg := &http.Server{Handler: pprofHandler(), ReadHeaderTimeout: 5 * time.Second}
		go dbg.Serve(dln)
		defer dbg.Close()
		log.Info("serving pprof", "addr", dln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", o.shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	// Every request has been answered; forward what the spool holds for as
	// long as the drain timeout allows, and leave the rest on disk.
	stopFwd()
	<-fwdDone
	dctx, dcancel := context.WithTimeout(context.Background(), o.drainTimeout)
	defer dcancel()
	left := fwd.Drain(dctx)
	log.Info("stopped", "points_left_in_spool", left)
	if shutdownErr != nil {
		return fmt.Errorf("shutdown: %w", shutdownErr)
	}
	return nil
}
