package keystore_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// TestCacheSeesChanges authenticates through a cache while another handle
// on the file (as keyctl would be) changes the key, and measures how long
// each change takes to reach the cache.
func TestCacheSeesChanges(t *testing.T) {
	s, path := openStore(t)
	ctx := context.Background()
	c, err := keystore.NewCache(ctx, s, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	other, err := keystore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	addr := netip.MustParseAddr("127.0.0.1")
	k, plain, err := other.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(ctx, plain, addr); err != nil {
		t.Fatalf("fresh key: %v", err)
	}

	waitFor := func(what string, want error, check func(keystore.Key) bool) {
		t.Helper()
		start := time.Now()
		for {
			got, err := c.Authenticate(ctx, plain, addr)
			if errors.Is(err, want) && (check == nil || check(got)) {
				t.Logf("%s reached the cache in %v", what, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > time.Second {
				t.Fatalf("%s: after 1s Authenticate = %+v, %v; want %v", what, got, err, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	rate := 7.0
	if _, err := other.Update(ctx, k.ID, keystore.Update{Rate: &rate}); err != nil {
		t.Fatal(err)
	}
	waitFor("update", nil, func(k keystore.Key) bool { return k.Rate == 7 })
	if _, err := other.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	waitFor("revoke", keystore.ErrRevoked, nil)

	// Expiry needs no change to the file: it is checked on every call.
	now := time.Now()
	_, plain2, _ := s.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1", ExpiresAt: now.Add(time.Hour)})
	if _, err := c.Authenticate(ctx, plain2, addr); err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return now.Add(time.Hour) }
	if _, err := c.Authenticate(ctx, plain2, addr); !errors.Is(err, keystore.ErrExpired) {
		t.Errorf("cached key past its expiry: error = %v, want ErrExpired", err)
	}
}

// BenchmarkCacheAuthenticate measures a key check answered from the cache,
// beside BenchmarkAuthenticate's trip to SQLite.
func BenchmarkCacheAuthenticate(b *testing.B) {
	s, _ := openStore(b)
	_, key := generate(b, s, keystore.NewKey{Hostname: "127.0.0.1"})
	c, err := keystore.NewCache(context.Background(), s, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	addr := netip.MustParseAddr("127.0.0.1")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Authenticate(context.Background(), key, addr); err != nil {
			b.Fatal(err)
		}
	}
}
