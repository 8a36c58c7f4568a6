package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/metricgate/metricgate/pkg/gateway"
	"github.com/metricgate/metricgate/pkg/server"
)

// setMemoryLimit sets a soft limit of limit bytes on the Go heap, unless
// GOMEMLIMIT is set. Below the limit the collector may run less often
// (GOGC 400 unless GOGC is set): with a small live heap and GOGC=100 it
// collected many times a second under load (README, Performance).
func setMemoryLimit(limit int64, getenv func(string) string) {
	if limit <= 0 || getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(limit)
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// newLogger returns the application log in format json or text.
func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// newHTTPServer returns the server for h with the apiserver's timeouts,
// and TLS when --tls-cert and --tls-key are given.
func newHTTPServer(o *options, h http.Handler, log *slog.Logger) (*http.Server, error) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnContext:       server.ConnContext,
	}
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return srv, nil
}

// listening is a server and the listener it serves.
type listening struct {
	srv *http.Server
	ln  net.Listener
}

// listen binds the ingest listener and, unless --admin-listen is empty,
// the admin one, and logs each address it bound ("listening", "admin
// listening"): a caller that passed port 0 reads the port there.
func listen(o *options, gw *gateway.Gateway, log *slog.Logger) ([]listening, error) {
	var servers []listening
	for _, l := range []struct {
		name, addr string
		h          http.Handler
	}{{"listening", o.listen, gw.Handler()}, {"admin listening", o.adminListen, gw.AdminHandler()}} {
		if l.addr == "" {
			continue
		}
		srv, err := newHTTPServer(o, l.h, log)
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil && l.name == "admin listening" && o.adminDefault && errors.Is(err, syscall.EADDRINUSE) {
			// Another apiserver on this host has the default admin port:
			// run without an admin listener rather than not at all.
			log.Warn("admin listener not started: the default admin address is in use (another apiserver on this host?); set --admin-listen to serve the admin API and console",
				"addr", l.addr)
			continue
		}
		if err != nil {
			for _, s := range servers {
				s.ln.Close()
			}
			return nil, err
		}
		if l.name == "listening" {
			ln = gw.Listener(ln)
		}
		servers = append(servers, listening{srv, ln})
		log.Info(l.name, "addr", ln.Addr().String(), "tls", srv.TLSConfig != nil)
	}
	g := o.gateway
	log.Info("serving", "db", gw.Keys().Addr(), "node", g.Node, "influx_url", g.Influx.URL, "influx_bucket", g.Influx.Bucket,
		"max_body", g.Server.MaxBody, "max_points", g.Server.MaxPoints, "limits", limitsMode(g), "proxy_protocol", g.ProxyProtocol)
	return servers, nil
}

// limitsMode says where the rate limits are kept, for the log: "local",
// or "redis" with what happens while it is unreachable.
func limitsMode(g gateway.Config) string {
	switch {
	case g.Limits == "":
		return "local"
	case g.LimitsFailClosed:
		return "redis, failing closed"
	}
	return "redis, failing open"
}

// isLoopback reports whether addr (host:port) names a loopback address,
// where plain HTTP does not leave the machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// serve serves every server until ctx is cancelled, then stops accepting
// and waits up to timeout for the requests in flight.
func serve(ctx context.Context, servers []listening, timeout time.Duration, log *slog.Logger) error {
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			if s.srv.TLSConfig != nil {
				errc <- s.srv.ServeTLS(s.ln, "", "")
				return
			}
			errc <- s.srv.Serve(s.ln)
		}()
	}
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", timeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, s := range servers {
		if serr := s.srv.Shutdown(sctx); serr != nil && err == nil {
			err = fmt.Errorf("shutdown: %w", serr)
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// serveDebug serves Go's profiles on addr, for measuring before
// optimising, and returns what stops it.
func serveDebug(addr string, log *slog.Logger) (stop func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	dbg := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go dbg.Serve(ln)
	log.Info("serving pprof", "addr", ln.Addr().String())
	return dbg.Close, nil
}
