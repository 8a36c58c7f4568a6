package keystore_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// dnsStore is a store whose DNS look-ups go to a DNS server of the test's
// own on loopback, on a clock the test moves, with a key bound to name,
// which resolves to 127.0.0.1.
type dnsStore struct {
	s     *keystore.Store
	dns   *testenv.DNSServer
	clock *testenv.Clock
	key   string
}

const dnsName = "web-1.metricgate.test"

var (
	dnsHost  = netip.MustParseAddr("127.0.0.1")
	attacker = netip.MustParseAddr("127.0.0.66")
)

func newDNSStore(t *testing.T) *dnsStore {
	t.Helper()
	d := &dnsStore{dns: testenv.StartDNS(t), clock: testenv.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	d.dns.Set(dnsName, dnsHost.String())
	d.s, _ = openStore(t, sqliteBackend)
	d.s.Now = d.clock.Now
	d.s.UseResolver(d.dns.Resolver())
	_, d.key = generate(t, d.s, keystore.NewKey{Hostname: dnsName})
	return d
}

// auth authenticates the test's key from addr.
func (d *dnsStore) auth(ctx context.Context, addr netip.Addr) error {
	_, err := d.s.Authenticate(ctx, d.key, addr)
	return err
}

// TestDNSKnockOut is the attack on a DNS-bound key: a client connects when
// no answer is cached, so that its request starts the look-up, and hangs
// up. The look-up must go on without it, and its answer serve the real
// host; before, the cancelled look-up was cached as a failure and the real
// host refused.
func TestDNSKnockOut(t *testing.T) {
	d := newDNSStore(t)
	hold := d.dns.Hold()
	ctx, hangUp := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.auth(ctx, attacker) }()
	<-hold.Asked
	hangUp()
	if err := <-errc; !errors.Is(err, keystore.ErrLookup) || !errors.Is(err, context.Canceled) {
		t.Errorf("the request that hung up: got %v, want ErrLookup (not a mismatch) and context.Canceled", err)
	}
	hold.Release()
	if err := d.auth(context.Background(), dnsHost); err != nil {
		t.Fatalf("the real host after the attacker hung up: %v, want it accepted", err)
	}
	if n := d.dns.Asked(dnsName); n != 1 {
		t.Errorf("%d look-ups, want 1: the attacker's, finished without it and shared", n)
	}
	if err := d.auth(context.Background(), attacker); !errors.Is(err, keystore.ErrHostMismatch) {
		t.Errorf("the attacker's own address: got %v, want ErrHostMismatch", err)
	}
}

// TestDNSOutage checks what a DNS server that fails does: the last real
// answer keeps serving the host after it expired, a failure is not
// cached (each request asks again, and the first after the outage gets a
// fresh answer), and with no answer at hand the error is ErrLookup, never
// a mismatch.
func TestDNSOutage(t *testing.T) {
	d := newDNSStore(t)
	ctx := context.Background()
	if err := d.auth(ctx, dnsHost); err != nil {
		t.Fatal(err)
	}
	d.dns.Fail(true)
	d.clock.Advance(31 * time.Second)
	for i := range 3 {
		asked := d.dns.Asked(dnsName)
		if err := d.auth(ctx, dnsHost); err != nil {
			t.Fatalf("request %d during the outage: %v, want the last answer served", i, err)
		}
		// The resolver may retry a SERVFAIL; what matters is that every
		// request asked again, the failure not being cached.
		if d.dns.Asked(dnsName) == asked {
			t.Errorf("request %d during the outage did not look the name up: a failure was cached", i)
		}
	}
	d.dns.Set(dnsName, "127.0.0.2")
	d.dns.Fail(false)
	if err := d.auth(ctx, netip.MustParseAddr("127.0.0.2")); err != nil {
		t.Errorf("the first request after the outage: %v, want the new answer", err)
	}
	if err := d.auth(ctx, dnsHost); !errors.Is(err, keystore.ErrHostMismatch) {
		t.Errorf("the old address after a new answer: got %v, want ErrHostMismatch", err)
	}

	d.dns.Fail(true)
	d.clock.Advance(24*time.Hour + 31*time.Second)
	if err := d.auth(ctx, netip.MustParseAddr("127.0.0.2")); !errors.Is(err, keystore.ErrLookup) || errors.Is(err, keystore.ErrHostMismatch) {
		t.Errorf("an outage past the last answer's 24 h: got %v, want ErrLookup and no mismatch", err)
	}
}

// TestDNSLookupsShared checks that the requests that find a name's answer
// expired share one look-up.
func TestDNSLookupsShared(t *testing.T) {
	d := newDNSStore(t)
	hold := d.dns.Hold()
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() { errs <- d.auth(context.Background(), dnsHost) })
	}
	<-hold.Asked
	hold.Release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a request sharing the look-up: %v", err)
		}
	}
	if got := d.dns.Asked(dnsName); got != 1 {
		t.Errorf("%d requests made %d look-ups, want 1", n, got)
	}
}

// TestDNSNoSuchName checks that "no such name" is a real answer: the key
// matches nobody, and the answer is cached like any other.
func TestDNSNoSuchName(t *testing.T) {
	d := newDNSStore(t)
	ctx := context.Background()
	_, gone := generate(t, d.s, keystore.NewKey{Hostname: "gone.metricgate.test"})
	for range 2 {
		if _, err := d.s.Authenticate(ctx, gone, dnsHost); !errors.Is(err, keystore.ErrHostMismatch) {
			t.Errorf("a key for a name that does not exist: got %v, want ErrHostMismatch", err)
		}
	}
	if n := d.dns.Asked("gone.metricgate.test"); n != 1 {
		t.Errorf("%d look-ups of a name that does not exist, want 1, then the cached answer", n)
	}
}

// TestInvalidLegacyHostnameNotLookedUp checks that a hostname the original
// setup accepted but CanonicalHostname does not, kept as written by the
// upgrade, matches nobody without a DNS query.
func TestInvalidLegacyHostnameNotLookedUp(t *testing.T) {
	path, keys := originalDatabase(t, "bad_name.metricgate.test", "web 1.metricgate.test")
	s, err := keystore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dns := testenv.StartDNS(t)
	dns.Set("bad_name.metricgate.test", "127.0.0.1")
	s.UseResolver(dns.Resolver())
	for _, key := range keys {
		if _, err := s.Authenticate(context.Background(), key, dnsHost); !errors.Is(err, keystore.ErrHostMismatch) {
			t.Errorf("a key with an invalid legacy hostname: got %v, want ErrHostMismatch", err)
		}
	}
	if n := dns.Asked("bad_name.metricgate.test"); n != 0 {
		t.Errorf("the invalid hostname was looked up %d times, want never", n)
	}
}

// FuzzHostnameBinding checks any hostname a key may be bound to: either
// it is refused as ErrInvalidHostname, or its canonical form is an
// address, a masked range or a lower-case DNS name that is canonical
// itself; and an admin key made over HTTP with it is allowed exactly when
// it is an address, a DNS name, or a range no wider than a /24 or /64.
func FuzzHostnameBinding(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::ffff:127.0.0.1", "10.0.0.7/24", "::ffff:10.0.0.0/120", "2001:DB8::1/64",
		"Web-1.Example.com.", "0.0.0.0/0", "fe80::1%eth0", "10.0.0.256", "bad_name", "a..b", "-x.example"} {
		f.Add(s)
	}
	limits := keystore.AdminLimits{MaxTTL: time.Hour}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, h string) {
		c, err := keystore.CanonicalHostname(h)
		admin := limits.CheckNew(keystore.NewKey{Hostname: h, Scopes: []string{"admin"}, ExpiresAt: now.Add(time.Hour)}, now)
		if err != nil {
			if !errors.Is(err, keystore.ErrInvalidHostname) || !errors.Is(admin, keystore.ErrInvalidHostname) {
				t.Fatalf("CanonicalHostname(%q) = %v; admin check %v; want ErrInvalidHostname from both", h, err, admin)
			}
			return
		}
		if again, err := keystore.CanonicalHostname(c); err != nil || again != c {
			t.Fatalf("CanonicalHostname(%q) = %q, which gives %q, %v", h, c, again, err)
		}
		wide := false
		switch a, aerr := netip.ParseAddr(c); {
		case aerr == nil:
			if a.Is4In6() || a.Zone() != "" {
				t.Fatalf("CanonicalHostname(%q) = %q, mapped or zoned", h, c)
			}
		case strings.Contains(c, "/"):
			p, err := netip.ParsePrefix(c)
			if err != nil || p != p.Masked() {
				t.Fatalf("CanonicalHostname(%q) = %q, not a masked range", h, c)
			}
			wide = p.Addr().Is4() && p.Bits() < 24 || !p.Addr().Is4() && p.Bits() < 64
		case c != strings.ToLower(c) || strings.HasSuffix(c, "."):
			t.Fatalf("CanonicalHostname(%q) = %q, not a lower-case name without the final dot", h, c)
		}
		if (admin != nil) != wide || admin != nil && !errors.Is(admin, keystore.ErrAdminLimit) {
			t.Fatalf("an admin key for %q (%q): %v; want it refused only if wider than a /24 or /64", h, c, admin)
		}
	})
}
