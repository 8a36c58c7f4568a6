package server

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestConnPeer checks that a connection's kept peer is used only for the
// RemoteAddr it was parsed from, and its text only for that address, not
// for a caller a trusted proxy names.
func TestConnPeer(t *testing.T) {
	ctx := ConnContext(context.Background(), nil)
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tt := range []struct{ remote, xff, want string }{
		{"[::ffff:192.0.2.1]:1000", "", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:1000", "", "192.0.2.1"},
		{"192.0.2.2:1000", "", "192.0.2.2"},
		{"10.0.0.1:1000", "198.51.100.7", "198.51.100.7"},
		{"10.0.0.1:1000", "", "10.0.0.1"},
	} {
		r := httptest.NewRequestWithContext(ctx, "POST", "/api/submit", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		addr, ok := clientAddr(r, trusted)
		if !ok || addr.String() != tt.want {
			t.Fatalf("%s (X-Forwarded-For %q): clientAddr = %v, %v; want %s", tt.remote, tt.xff, addr, ok, tt.want)
		}
		if got := addrText(r, addr); got != tt.want {
			t.Errorf("%s (X-Forwarded-For %q): addrText = %q, want %q", tt.remote, tt.xff, got, tt.want)
		}
	}
}

// BenchmarkCallerAddr is a request's caller address and its text for the
// usage records: parsed on every request, as without a connection's
// context, and kept by the connection, as the apiserver serves them.
func BenchmarkCallerAddr(b *testing.B) {
	for _, v := range []struct {
		name string
		ctx  context.Context
	}{{"parsed", context.Background()}, {"kept", ConnContext(context.Background(), nil)}} {
		r := httptest.NewRequestWithContext(v.ctx, "POST", "/api/submit", nil)
		r.RemoteAddr = "127.0.0.1:40000"
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a, _ := clientAddr(r, nil)
				addrText(r, a)
			}
		})
	}
}
