package testenv

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"
)

// The ways HAProxy tells a gateway who the client is, the values of
// HAProxyConfig.Mode.
const (
	// ProxyV2 opens every connection to a gateway, health checks included,
	// with a PROXY protocol v2 header (the gateways run --proxy-protocol).
	ProxyV2 = "proxy-v2"
	// ForwardedFor adds the client's address to X-Forwarded-For.
	ForwardedFor = "forwardfor"
)

// haproxyConfig is the configuration of every HAProxy this package starts:
// one HTTP frontend on loopback, round robin over the gateways, each
// checked on /readyz every CheckInterval and taken out after two failed
// checks, back after two good ones; a request whose connection to a
// gateway fails goes to another. HAProxy connects to the gateways from
// Source, the address they trust as their proxy. The stats socket in Dir
// tells a test each gateway's state.
var haproxyConfig = template.Must(template.New("haproxy.cfg").Parse(`global
    maxconn 4096
    stats socket {{.Dir}}/haproxy.sock mode 600 level admin

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
    retries 3
    option redispatch 1

frontend ingest
    bind 127.0.0.1:{{.Port}}
    default_backend gateways

backend gateways
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
{{- if eq .Mode "forwardfor"}}
    option forwardfor
{{- end}}
    default-server check inter {{.Inter}} fall 2 rise 2 source {{.Source}}{{if eq .Mode "proxy-v2"}} send-proxy-v2{{end}}
{{- range $i, $s := .Servers}}
    server gw{{$i}} {{$s}}
{{- end}}
`))

// HAProxyConfig describes the load balancer to start.
type HAProxyConfig struct {
	// Servers are the gateways' ingest addresses (host:port), named gw0,
	// gw1, ... in order.
	Servers []string
	// Mode is ProxyV2 or ForwardedFor.
	Mode string
	// Source is the address HAProxy connects to the gateways from, which
	// they trust with --trusted-proxy; default 127.0.0.1. On loopback a
	// client can be 127.0.0.1 too: a Source of its own (127.0.0.9) keeps
	// what the client claims apart from what the proxy says.
	Source string
	// CheckInterval is how often each gateway's /readyz is checked;
	// default 100 ms.
	CheckInterval time.Duration
}

// HAProxy is a load balancer of its own, in front of gateways.
type HAProxy struct {
	Addr string // 127.0.0.1:port, the frontend
	URL  string // http://Addr
	sock string
	server
}

// StartHAProxy starts a private HAProxy for the test and stops it when
// the test ends. Without haproxy (Debian's haproxy package, which
// scripts/deps.sh installs) the test is Missing.
func StartHAProxy(t testing.TB, cfg HAProxyConfig) *HAProxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		Missing(t, "no HAProxy: %v", err)
	}
	h, err := launchHAProxy(bin, t.TempDir(), cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.proc.stop)
	return h
}

func launchHAProxy(bin, dir string, cfg HAProxyConfig, detach bool) (*HAProxy, error) {
	if cfg.Mode != ProxyV2 && cfg.Mode != ForwardedFor {
		return nil, fmt.Errorf("haproxy mode %q: want %s or %s", cfg.Mode, ProxyV2, ForwardedFor)
	}
	if cfg.Source == "" {
		cfg.Source = "127.0.0.1"
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = 100 * time.Millisecond
	}
	conf := filepath.Join(dir, "haproxy.cfg")
	h := &HAProxy{sock: filepath.Join(dir, "haproxy.sock")}
	h.check = h.ping
	h.proc = &process{argv: []string{bin, "-db", "-f", conf}, dir: dir, logPath: filepath.Join(dir, "haproxy.log"), detach: detach}
	err := onFreePorts(1, func(ports []int) error {
		var b strings.Builder
		err := haproxyConfig.Execute(&b, map[string]any{"Port": ports[0], "Dir": dir, "Mode": cfg.Mode, "Source": cfg.Source,
			"Inter": fmt.Sprintf("%dms", cfg.CheckInterval.Milliseconds()), "Servers": cfg.Servers})
		if err != nil {
			return err
		}
		if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
			return err
		}
		h.Addr = loopback(ports[0])
		h.URL = "http://" + h.Addr
		return h.proc.start(h.check)
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// ping checks that the frontend takes connections.
func (h *HAProxy) ping() error {
	c, err := net.DialTimeout("tcp", h.Addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// States returns the state HAProxy gives each gateway, by name (gw0,
// ...): UP, DOWN, or a transition such as "UP 1/2".
func (h *HAProxy) States() (map[string]string, error) {
	c, err := net.DialTimeout("unix", h.sock, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprint(c, "show stat\n"); err != nil {
		return nil, err
	}
	out, err := io.ReadAll(c)
	if err != nil {
		return nil, err
	}
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("haproxy show stat: %v", err)
	}
	head := rows[0]
	head[0] = strings.TrimPrefix(head[0], "# ")
	name, status := slices.Index(head, "svname"), slices.Index(head, "status")
	states := map[string]string{}
	for _, row := range rows[1:] {
		if len(row) > status && strings.HasPrefix(row[name], "gw") {
			states[row[name]] = row[status]
		}
	}
	return states, nil
}

// WaitState waits up to within until HAProxy gives gateway name (gw0,
// ...) the state want, and returns how long that took.
func (h *HAProxy) WaitState(t testing.TB, name, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		states, err := h.States()
		if err == nil && states[name] == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("HAProxy gives %s the state %q after %v, want %s (%v)", name, states[name], within, want, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
