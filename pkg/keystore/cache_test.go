package keystore_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// newCache returns a cache over s with options o, closed after the test.
func newCache(t testing.TB, s *keystore.Store, o keystore.CacheOptions) *keystore.Cache {
	t.Helper()
	c, err := keystore.NewCache(context.Background(), s, o)
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitAuth calls c.Authenticate with key until it returns want and check,
// if given, accepts the key, for up to within; it returns how long that
// took.
func waitAuth(t *testing.T, c *keystore.Cache, key string, want error, check func(keystore.Key) bool, within time.Duration) time.Duration {
	t.Helper()
	addr := netip.MustParseAddr("127.0.0.1")
	start := time.Now()
	for {
		got, err := c.Authenticate(context.Background(), key, addr)
		if errors.Is(err, want) && (check == nil || check(got)) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("after %v Authenticate = %+v, %v; want %v", within, got, err, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCacheSeesChanges authenticates through a cache while another handle
// on the store (as keyctl would be) changes the key, and measures how long
// each change takes to reach the cache.
func TestCacheSeesChanges(t *testing.T) { forEachBackend(t, testCacheSeesChanges) }

func testCacheSeesChanges(t *testing.T, b backend) {
	s, addr := openStore(t, b)
	ctx := context.Background()
	c := newCache(t, s, keystore.CacheOptions{Poll: 50 * time.Millisecond})
	other := openAt(t, addr)
	k, plain, err := other.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	loopback := netip.MustParseAddr("127.0.0.1")
	if _, err := c.Authenticate(ctx, plain, loopback); err != nil {
		t.Fatalf("fresh key: %v", err)
	}

	rate := 7.0
	if _, err := other.Update(ctx, k.ID, keystore.Update{Rate: &rate}); err != nil {
		t.Fatal(err)
	}
	took := waitAuth(t, c, plain, nil, func(k keystore.Key) bool { return k.Rate == 7 }, time.Second)
	t.Logf("update reached the cache in %v", took.Round(time.Millisecond))
	if _, err := other.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	took = waitAuth(t, c, plain, keystore.ErrRevoked, nil, time.Second)
	t.Logf("revoke reached the cache in %v", took.Round(time.Millisecond))

	// Expiry needs no change to the store: it is checked on every call.
	now := time.Now()
	_, plain2, _ := s.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1", ExpiresAt: now.Add(time.Hour)})
	if _, err := c.Authenticate(ctx, plain2, loopback); err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return now.Add(time.Hour) }
	if _, err := c.Authenticate(ctx, plain2, loopback); !errors.Is(err, keystore.ErrExpired) {
		t.Errorf("cached key past its expiry: error = %v, want ErrExpired", err)
	}
	if st := c.Status(); st.Backend != map[bool]string{false: "sqlite", true: "postgres"}[b.postgres()] || !st.Connected || st.CachedKeys < 1 {
		// The second key is not cached when its look-up raced the change
		// that made it.
		t.Errorf("Status = %+v, want the backend, connected, 1 or 2 keys", st)
	}
}

// TestCacheStale checks that a cache that has not heard from its store for
// longer than MaxStale answers ErrUnavailable, which the gateway turns into
// 503, rather than vouch for a key, and answers again once it hears.
func TestCacheStale(t *testing.T) { forEachBackend(t, testCacheStale) }

func testCacheStale(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	// The key is made first: on PostgreSQL its notification would count as
	// hearing from the store, at whatever time the clock then showed.
	_, plain := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})
	clock := testenv.NewClock(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	c := newCache(t, s, keystore.CacheOptions{Poll: time.Hour, MaxStale: time.Minute, Now: clock.Now})
	loopback := netip.MustParseAddr("127.0.0.1")
	if _, err := c.Authenticate(ctx, plain, loopback); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if _, err := c.Authenticate(ctx, plain, loopback); err != nil {
		t.Errorf("after exactly MaxStale: %v, want the key", err)
	}
	clock.Advance(time.Second)
	_, err := c.Authenticate(ctx, plain, loopback)
	var unavailable interface{ Unavailable() string }
	if !errors.Is(err, keystore.ErrUnavailable) || !errors.As(err, &unavailable) {
		t.Errorf("after MaxStale: error = %v, want ErrUnavailable with an Unavailable method", err)
	}
	if got := c.Behind(); got != 61*time.Second {
		t.Errorf("Behind = %v, want 61s", got)
	}
}

// BenchmarkCacheAuthenticate measures a key check answered from the cache,
// beside BenchmarkAuthenticate's trip to the database.
func BenchmarkCacheAuthenticate(b *testing.B) {
	forEachBackend(b, func(b *testing.B, be backend) {
		s, _ := openStore(b, be)
		_, key := generate(b, s, keystore.NewKey{Hostname: "127.0.0.1"})
		c := newCache(b, s, keystore.CacheOptions{})
		addr := netip.MustParseAddr("127.0.0.1")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.Authenticate(context.Background(), key, addr); err != nil {
				b.Fatal(err)
			}
		}
	})
}
