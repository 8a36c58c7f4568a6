package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/metricgate/metricgate/pkg/metrics"
)

// proxyHeaderTimeout bounds how long a trusted proxy's connection may take
// to send its PROXY header.
const proxyHeaderTimeout = 5 * time.Second

// ProxyProtocol wraps ln, the ingest listener, for a load balancer that
// sends the PROXY protocol (v1 or v2, as HAProxy's send-proxy-v2 does): a
// connection from an address in trusted must open with a header, whose
// source address is then the connection's remote address, the caller's;
// a connection from anywhere else is served as it comes, and one that
// sends a header is closed, so no client can name another address. A
// header that does not parse, one from outside trusted, and a trusted
// connection without one each close the connection and are counted in
// m.ProxyHeaderRefused by reason.
//
// The header is read by the connection's own goroutine on its first read,
// never by the accept loop, so a slow sender holds up no one else.
func ProxyProtocol(ln net.Listener, trusted []netip.Prefix, m *metrics.Metrics) net.Listener {
	policy := func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
		ap, err := netip.ParseAddrPort(o.Upstream.String())
		if err != nil {
			return proxyproto.REJECT, fmt.Errorf("%w: %v", proxyproto.ErrInvalidUpstream, err)
		}
		if isTrusted(ap.Addr().Unmap(), trusted) {
			return proxyproto.REQUIRE, nil
		}
		return proxyproto.REJECT, nil
	}
	return &proxyListener{
		Listener: &proxyproto.Listener{Listener: ln, ConnPolicy: policy, ReadHeaderTimeout: proxyHeaderTimeout},
		metrics:  m,
	}
}

// proxyListener counts the connections whose header was refused.
type proxyListener struct {
	net.Listener
	metrics *metrics.Metrics
}

func (l *proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &proxyConn{Conn: c, l: l}, nil
}

// proxyConn is a connection whose first read, which reads the PROXY
// header, is looked at for a refusal.
type proxyConn struct {
	net.Conn
	l    *proxyListener
	once sync.Once
}

func (c *proxyConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.once.Do(func() {
		if reason := proxyRefusal(err); reason != "" {
			c.l.metrics.ProxyHeaderRefused.WithLabelValues(reason).Inc()
		}
	})
	return n, err
}

// proxyRefusal names why err, a connection's first read, refused its
// PROXY header, or returns "" when it did not.
func proxyRefusal(err error) string {
	var netErr net.Error
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.As(err, &netErr):
		return ""
	case errors.Is(err, proxyproto.ErrSuperfluousProxyHeader):
		return metrics.ProxyUntrusted
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		return metrics.ProxyMissing
	}
	return metrics.ProxyMalformed
}
