package server

// Fuzz targets for the parsing of what a client controls at the door: the
// key in its headers and query, and its address in X-Forwarded-For. They
// are in the package because the parsers are not exported.

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/limit"
	"github.com/metricgate/metricgate/pkg/metrics"
)

// FuzzKeyHeader sends any Authorization, X-API-Key and p= through every
// endpoint's key parser and the authenticator, against a real key store
// holding one key: a parser returns a trimmed part of what was sent, and
// the authenticator accepts only that key and answers anything else with
// 401 or 429, never an error of its own, even for keys longer than any
// key.
func FuzzKeyHeader(f *testing.F) {
	store, err := keystore.Open(context.Background(), filepath.Join(f.TempDir(), "keys.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer store.Close()
	_, good, err := store.Generate(context.Background(), keystore.NewKey{Hostname: "192.0.2.1"})
	if err != nil {
		f.Fatal(err)
	}
	auth := &authenticator{keys: store, failures: limit.Local{Failures: limit.NewFailures(1, 1<<30, time.Now)}, lookupLogs: limit.NewFailures(0, 0, time.Now),
		log: slog.New(slog.DiscardHandler), metrics: metrics.New()}

	f.Add("Token "+good, "", "")
	f.Add("Bearer  "+strings.ToUpper(good), "", "")
	f.Add("Token user:"+good, good, good)
	f.Add("Basic dXNlcjpwYXNz", " "+good+" ", "")
	f.Add("", strings.Repeat("x", 65), strings.Repeat("k", 1000))
	f.Add("token :", "{"+good+"}", "urn:uuid:"+good)
	f.Fuzz(func(t *testing.T, authorization, apiKey, p string) {
		r := httptest.NewRequest("POST", "/write", nil)
		r.URL.RawQuery = "p=" + p
		r.RemoteAddr = "192.0.2.1:1234"
		r.Header.Set("Authorization", authorization)
		r.Header.Set("X-API-Key", apiKey)
		sent := authorization + "\n" + apiKey + "\n" + r.URL.Query().Get("p")
		if _, pw, ok := r.BasicAuth(); ok {
			sent += "\n" + pw
		}
		for name, parse := range map[string]func(*http.Request) string{
			"tokenKey": tokenKey, "passwordKey": passwordKey, "adminKey": adminKey, "submit": submitAPI(DefaultConfig()).key,
		} {
			key := parse(r)
			if key != strings.TrimSpace(key) || !strings.Contains(sent, key) {
				t.Fatalf("%s returned %q, which is not a trimmed part of what was sent", name, key)
			}
			k, _, err := auth.authenticate(httptest.NewRecorder(), r, key)
			if err == nil {
				if keystore.HashKey(key) != keystore.HashKey(good) || k.ID == 0 {
					t.Fatalf("%s: %q was accepted as key %d", name, key, k.ID)
				}
				continue
			}
			if status, _ := statusOf(err); status != http.StatusUnauthorized && status != http.StatusTooManyRequests {
				t.Fatalf("%s: %q answered %d (%v), want 401 or 429", name, key, status, err)
			}
		}
	})
}

// FuzzClientAddr gives clientAddr any peer, X-Forwarded-For and trusted
// range: the caller it finds is the peer when the peer is not trusted,
// and otherwise the peer or one of the hops sent, unmapped and without a
// zone, and never a trusted proxy unless every hop is one.
func FuzzClientAddr(f *testing.F) {
	f.Add("127.0.0.1:5000", "198.51.100.1, 192.0.2.7", "127.0.0.0/8")
	f.Add("[::ffff:10.0.0.1]:1", "::ffff:192.0.2.9,10.0.0.2", "10.0.0.0/8")
	f.Add("[fe80::1%eth0]:80", "fe80::2%25x, 2001:db8::1", "fe80::/10")
	f.Add("10.0.0.1:1", ",,, ,", "10.0.0.1/32")
	f.Add("10.0.0.1:1", "not-an-address", "0.0.0.0/0")
	f.Fuzz(func(t *testing.T, remote, xff, trustedRange string) {
		var trusted []netip.Prefix
		if p, err := netip.ParsePrefix(trustedRange); err == nil {
			trusted = append(trusted, p.Masked())
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		for _, h := range strings.Split(xff, "\n") {
			r.Header.Add("X-Forwarded-For", h)
		}
		addr, ok := clientAddr(r, trusted)
		// On a connection, the first request parses the peer and the next
		// reuse it: each finds the same caller, and its text.
		rc := r.WithContext(ConnContext(r.Context(), nil))
		for range 2 {
			if a, o := clientAddr(rc, trusted); a != addr || o != ok {
				t.Fatalf("on a connection: clientAddr = %v, %v; want %v, %v as without", a, o, addr, ok)
			}
			if got := addrText(rc, addr); ok && got != addr.String() {
				t.Fatalf("on a connection: addrText = %q, want %q", got, addr.String())
			}
		}
		if !ok {
			return
		}
		if !addr.IsValid() || addr.Is4In6() || addr.Zone() != "" {
			t.Fatalf("clientAddr = %v, want a valid address, unmapped, without a zone", addr)
		}
		peer := hostOf(remote)
		if !isTrusted(peer, trusted) {
			if addr != peer {
				t.Fatalf("untrusted peer %v: clientAddr = %v, want the peer", peer, addr)
			}
			return
		}
		var hops []netip.Addr
		for _, h := range strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(h)); err == nil {
				hops = append(hops, a.Unmap().WithZone(""))
			}
		}
		if addr != peer && !contains(hops, addr) {
			t.Fatalf("clientAddr = %v, neither the peer %v nor a hop of %q", addr, peer, xff)
		}
		if isTrusted(addr, trusted) {
			for _, h := range hops {
				if !isTrusted(h, trusted) {
					t.Fatalf("clientAddr = %v, a trusted proxy, though hop %v of %q is not one", addr, h, xff)
				}
			}
		}
	})
}

// hostOf is the peer address of a RemoteAddr, as the server writes it.
func hostOf(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap().WithZone("")
}

func contains(list []netip.Addr, a netip.Addr) bool {
	for _, b := range list {
		if a == b {
			return true
		}
	}
	return false
}

// FuzzQueryValue checks the write endpoints' query reading against
// url.ParseQuery's.
func FuzzQueryValue(f *testing.F) {
	for _, s := range []string{"precision=ms", "db=x&p=k%2By&precision=s", "p=a+b", "precision=%zz&precision=s", "a;b=1&precision=u", "precision"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		for _, key := range []string{"precision", "p"} {
			if got, want := queryValue(raw, key), q.Get(key); got != want {
				t.Fatalf("%q: %s = %q, want %q", raw, key, got, want)
			}
		}
	})
}
