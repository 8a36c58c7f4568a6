package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"metricgate/pkg/influx"
	"metricgate/pkg/keystore"
	"metricgate/pkg/server"
	"metricgate/pkg/usage"
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
	if o.cfg.DefaultRate < 0 || o.cfg.DefaultBurst < 0 || o.cfg.AuthFailRate <= 0 || o.cfg.AuthFailBurst < 0 || o.usageFlush <= 0 {
		return nil, errors.New("rates, bursts and --usage-flush must not be negative (--auth-fail-rate positive)")
	}
	if o.logFormat != "json" && o.logFormat != "text" {
		return nil, fmt.Errorf("--log-format %q: want json or text", o.logFormat)
	}
	return o, nil
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
	var handler slog.Handler = slog.NewJSONHandler(stderr, nil)
	if o.logFormat == "text" {
		handler = slog.NewTextHandler(stderr, nil)
	}
	log := slog.New(handler)

	keys, err := keystore.Open(ctx, o.db)
	if err != nil {
		return err
	}
	defer keys.Close()
	out := influx.New(o.influx)
	defer out.Close()
	usageCtx, stopUsage := context.WithCancel(context.Background())
	usageDone := make(chan struct{})
	recorder := usage.NewRecorder(keys, log)
	go func() { recorder.Run(usageCtx, o.usageFlush); close(usageDone) }()
	// Runs after the server has stopped: the last usage is flushed before
	// the key store closes.
	defer func() { stopUsage(); <-usageDone }()

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           server.New(log, o.cfg, keys, out, recorder),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelWarn),
	}
	log.Info("listening", "addr", ln.Addr().String(), "db", o.db, "influx_url", o.influx.URL,
		"influx_bucket", o.influx.Bucket, "max_body", o.cfg.MaxBody, "max_points", strconv.Itoa(o.cfg.MaxPoints))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", o.shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
