package testenv_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/metricgate/metricgate/internal/testenv"
)

// backend is an HTTP server standing for a gateway: it answers /readyz
// with ready's status and every other request with who it is and whom it
// saw, and with proxy set reads a PROXY header first.
type backend struct {
	name  string
	addr  string
	srv   *http.Server
	mu    sync.Mutex
	ready int
}

func startBackend(t *testing.T, name string, proxy bool) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, addr: ln.Addr().String(), ready: 200}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			b.mu.Lock()
			defer b.mu.Unlock()
			w.WriteHeader(b.ready)
			return
		}
		io.WriteString(w, b.name+" "+r.RemoteAddr+" "+r.Header.Get("X-Forwarded-For"))
	})}
	if proxy {
		ln = &proxyproto.Listener{Listener: ln}
	}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func (b *backend) setReady(status int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ready = status
}

// TestHAProxy puts a private HAProxy in front of two backends in each
// mode: it goes round robin, connects from its Source, names the client in
// a PROXY v2 header or in X-Forwarded-For, and takes a backend whose
// /readyz fails out of rotation and back.
func TestHAProxy(t *testing.T) {
	for _, mode := range []string{testenv.ProxyV2, testenv.ForwardedFor} {
		t.Run(mode, func(t *testing.T) {
			a, b := startBackend(t, "a", mode == testenv.ProxyV2), startBackend(t, "b", mode == testenv.ProxyV2)
			h := testenv.StartHAProxy(t, testenv.HAProxyConfig{Servers: []string{a.addr, b.addr}, Mode: mode, Source: "127.0.0.9"})
			h.WaitState(t, "gw0", "UP", 5*time.Second)
			h.WaitState(t, "gw1", "UP", 5*time.Second)
			client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
			seen := map[string]int{}
			for range 4 {
				got := get(t, client, h.URL+"/x")
				f := strings.Fields(got)
				seen[f[0]]++
				switch {
				case mode == testenv.ProxyV2 && !strings.HasPrefix(f[1], "127.0.0.2:"):
					t.Errorf("backend saw %q, want the client 127.0.0.2 from the PROXY header", got)
				case mode == testenv.ForwardedFor && (!strings.HasPrefix(f[1], "127.0.0.9:") || len(f) < 3 || f[2] != "127.0.0.2"):
					t.Errorf("backend saw %q, want HAProxy's 127.0.0.9 and X-Forwarded-For 127.0.0.2", got)
				}
			}
			if seen["a"] != 2 || seen["b"] != 2 {
				t.Errorf("requests per backend %v, want 2 and 2 (round robin)", seen)
			}
			a.setReady(503)
			took := h.WaitState(t, "gw0", "DOWN", 5*time.Second)
			t.Logf("a backend whose /readyz fails is DOWN after %v", took)
			for range 3 {
				if got := get(t, client, h.URL+"/x"); !strings.HasPrefix(got, "b ") {
					t.Errorf("with a DOWN, got %q, want b", got)
				}
			}
			a.setReady(200)
			h.WaitState(t, "gw0", "UP", 5*time.Second)
		})
	}
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestHAProxyCommand starts a detached HAProxy with the testenv command,
// as scripts/cluster.sh does, reaches a backend through it, and stops it.
func TestHAProxyCommand(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		testenv.Missing(t, "no HAProxy: %v", err)
	}
	b := startBackend(t, "a", false)
	dir := t.TempDir()
	var out, errs bytes.Buffer
	if code := testenv.Main([]string{"haproxy", "start", dir, testenv.ForwardedFor, "127.0.0.1", b.addr}, &out, &errs); code != 0 {
		t.Fatalf("haproxy start: exit %d, %s", code, errs.String())
	}
	t.Cleanup(func() { testenv.Main([]string{"haproxy", "stop", dir}, &out, &errs) })
	url, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "HAPROXY_URL=")
	if !ok {
		t.Fatalf("haproxy start printed %q, want HAPROXY_URL=...", out.String())
	}
	url = strings.Trim(url, "'")
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(url + "/x")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 200 through %s after 5 s (%v)", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := testenv.Main([]string{"haproxy", "stop", dir}, &out, &errs); code != 0 {
		t.Fatalf("haproxy stop: exit %d, %s", code, errs.String())
	}
	if _, err := http.Get(url + "/x"); err == nil {
		t.Error("HAProxy still answers after haproxy stop")
	}
	if code := testenv.Main([]string{"haproxy", "start", dir, "round-robin", "127.0.0.1", b.addr}, &out, &errs); code != 1 {
		t.Errorf("haproxy start with an unknown mode: exit %d, want 1", code)
	}
}
