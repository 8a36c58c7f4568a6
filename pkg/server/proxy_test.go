package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	gatewaypkg "github.com/metricgate/metricgate/pkg/gateway"
)

// TestProxyProtocol serves a gateway with --proxy-protocol and
// --trusted-proxy 127.0.0.1 and speaks to it from 127.0.0.1 (the proxy)
// and 127.0.0.3 (a client): a key bound to 192.0.2.9 passes only when the
// proxy's header names 192.0.2.9, in v1 or v2; a client is served as it
// comes; and every header the gateway must not believe closes the
// connection and is counted.
func TestProxyProtocol(t *testing.T) {
	g := startGatewayWith(t, func(cfg *gatewaypkg.Config) {
		cfg.ProxyProtocol = true
		cfg.Server.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g.gw.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(g.gw.Listener(ln))
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()
	_, remote := g.key(t, "192.0.2.9")
	_, client := g.key(t, "127.0.0.3")
	submit := func(key string) string {
		return "POST /api/submit HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nX-API-Key: " + key +
			"\r\nContent-Length: 28\r\nConnection: close\r\n\r\n" + `{"field": "n", "value": 1.5}`
	}
	header := func(version byte, src string) string {
		h := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
			net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		b, err := h.Format()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name, from, send string
		want             int    // the status, 0 for a closed connection
		refused          string // the reason counted
	}{
		{"V1", "127.0.0.1", header(1, "192.0.2.9:40000") + submit(remote), 200, ""},
		{"V2", "127.0.0.1", header(2, "192.0.2.9:40000") + submit(remote), 200, ""},
		{"V2OtherClient", "127.0.0.1", header(2, "192.0.2.10:40000") + submit(remote), 401, ""},
		{"ClientDirect", "127.0.0.3", submit(client), 200, ""},
		{"ClientSendsHeader", "127.0.0.3", header(1, "192.0.2.9:40000") + submit(remote), 0, "untrusted"},
		{"ProxyWithoutHeader", "127.0.0.1", submit(remote), 0, "missing"},
		{"Malformed", "127.0.0.1", "PROXY TCP4 192.0.2.9 nonsense\r\n" + submit(remote), 0, "malformed"},
		{"MalformedV2", "127.0.0.1", "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x03abc" + submit(remote), 0, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := refusedCount(t, g, tt.refused)
			status, err := rawExchange(tt.from, addr, tt.send)
			if err != nil || status != tt.want {
				t.Fatalf("from %s: status %d (%v), want %d", tt.from, status, err, tt.want)
			}
			if tt.refused != "" {
				if after := refusedCount(t, g, tt.refused); after != before+1 {
					t.Errorf("metricgate_proxy_header_refused_total{reason=%q} went from %d to %d, want one more", tt.refused, before, after)
				}
			}
		})
	}
}

// rawExchange connects to addr from the local address from, sends send,
// and returns the answer's status, or 0 when the gateway closed the
// connection without one.
func rawExchange(from, addr, send string) (int, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return -1, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, send); err != nil {
		return -1, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
		return 0, nil
	}
	if err != nil {
		return -1, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// refusedCount reads metricgate_proxy_header_refused_total for reason
// from the admin listener's /metrics; 0 for no reason.
func refusedCount(t *testing.T, g *gateway, reason string) int {
	t.Helper()
	if reason == "" {
		return 0
	}
	r := request(t, "GET", g.admin+"/metrics", "")
	prefix := fmt.Sprintf("metricgate_proxy_header_refused_total{reason=%q} ", reason)
	for _, line := range strings.Split(r.body, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatalf("no %s in /metrics", prefix)
	return 0
}
