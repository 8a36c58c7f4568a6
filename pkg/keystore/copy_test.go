package keystore_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// copyFixture fills s with keys of every kind, through two nodes: one with
// a full policy, a revoked one, a rotated pair, one bound to a host by
// RevokeHost's side, with usage. It returns the keys' values.
func copyFixture(t *testing.T, s *keystore.Store) []string {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	s.Actor, s.Node = "keyctl:alice@admin-1", "gw-1"
	full, p1 := generate(t, s, keystore.NewKey{Name: "web-one", Hostname: "10.0.0.0/24", Description: "web one", Scopes: []string{"submit", "admin"},
		Measurements: []string{"cpu", "mem"}, Rate: 2.5, Burst: 50, ExpiresAt: now.Add(48 * time.Hour),
		Bucket: "tenant-a/week", MaxSeries: 50})
	if _, _, err := s.Quarantine(ctx, full.ID, "InfluxDB refused its points"); err != nil {
		t.Fatal(err)
	}
	revoked, p2 := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})
	if _, err := s.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	old, p3 := generate(t, s, keystore.NewKey{Name: "web-1-rotated", Hostname: "web-1"})
	_, p4, _, err := s.Rotate(ctx, old.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordUsage(ctx, map[int64]keystore.Usage{full.ID: {LastUsedAt: now, LastUsedAddr: "10.0.0.7", Requests: 3, Points: 30}}); err != nil {
		t.Fatal(err)
	}
	s.Node = "gw-2"
	if err := s.RecordUsage(ctx, map[int64]keystore.Usage{full.ID: {LastUsedAt: now.Add(time.Second), LastUsedAddr: "10.0.0.8", Requests: 1, Points: 2},
		old.ID: {LastUsedAt: now, LastUsedAddr: "127.0.0.1", Requests: 5, Points: 5}}); err != nil {
		t.Fatal(err)
	}
	return []string{p1, p2, p3, p4}
}

// TestCopy copies a store of every kind of key from each backend to the
// other and checks that the copy holds the same keys, usage and audit, that
// the keys work there as they did, that copying again changes nothing, and
// that new keys get new ids.
func TestCopy(t *testing.T) {
	sqlite, postgres := backends[0], backends[1]
	for _, tt := range []struct {
		name     string
		from, to backend
	}{{"SQLiteToPostgreSQL", sqlite, postgres}, {"PostgreSQLToSQLite", postgres, sqlite}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			src, _ := openStore(t, tt.from)
			plains := copyFixture(t, src)
			dst, _ := openStore(t, tt.to)
			dst.Now = src.Now

			r, err := keystore.Copy(ctx, src, dst)
			if want := (keystore.CopyReport{Keys: 4, Usage: 3, Audit: 7}); err != nil || r != want {
				t.Fatalf("Copy = %+v, %v; want %+v", r, err, want)
			}
			want, _ := src.List(ctx, keystore.Filter{All: true})
			got, _ := dst.List(ctx, keystore.Filter{All: true})
			if !reflect.DeepEqual(got, want) {
				t.Errorf("copied keys:\n%+v\nwant\n%+v", got, want)
			}
			if got, want := auditLines(t, dst, 0, 0), auditLines(t, src, 0, 0); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("copied audit:\n%s\nwant\n%s", formatLines(got), formatLines(want))
			}
			srcAudit, _ := src.Audit(ctx, 0, 0)
			dstAudit, _ := dst.Audit(ctx, 0, 0)
			for i := range srcAudit {
				if !dstAudit[i].At.Equal(srcAudit[i].At) || dstAudit[i].Node != srcAudit[i].Node {
					t.Errorf("audit entry %d at %v through %q, want %v through %q", i, dstAudit[i].At, dstAudit[i].Node, srcAudit[i].At, srcAudit[i].Node)
				}
			}
			for _, p := range plains {
				_, werr := src.Authenticate(ctx, p, netip.MustParseAddr("127.0.0.1"))
				_, gerr := dst.Authenticate(ctx, p, netip.MustParseAddr("127.0.0.1"))
				if !errors.Is(gerr, werr) && fmt.Sprint(gerr) != fmt.Sprint(werr) {
					t.Errorf("key %s…: Authenticate in the copy = %v, want %v as in the source", p[:8], gerr, werr)
				}
			}

			r, err = keystore.Copy(ctx, src, dst)
			if want := (keystore.CopyReport{Skipped: 4}); err != nil || r != want {
				t.Errorf("Copy again = %+v, %v; want %+v", r, err, want)
			}
			if again, _ := dst.List(ctx, keystore.Filter{All: true}); !reflect.DeepEqual(again, want) {
				t.Errorf("after copying again the keys differ")
			}
			if n := len(auditLines(t, dst, 0, 0)); n != 7 {
				t.Errorf("after copying again the audit has %d entries, want 7", n)
			}
			k, _ := generate(t, dst, keystore.NewKey{Hostname: "web-9"})
			if k.ID != want[len(want)-1].ID+1 {
				t.Errorf("new key in the copy has id %d, want %d", k.ID, want[len(want)-1].ID+1)
			}
		})
	}
}

// TestCopyConflict copies into a store that holds another key under a
// source key's id, or a source key under another id, and checks that the
// error names the key and that nothing was written.
func TestCopyConflict(t *testing.T) { forEachBackend(t, testCopyConflict) }

func testCopyConflict(t *testing.T, b backend) {
	ctx := context.Background()
	src := openAt(t, backends[0].newAddr(t))
	_, p1 := generate(t, src, keystore.NewKey{Hostname: "web-1"})
	generate(t, src, keystore.NewKey{Hostname: "web-2"})

	t.Run("SameIDOtherHash", func(t *testing.T) {
		dst, _ := openStore(t, b)
		generate(t, dst, keystore.NewKey{Hostname: "web-1"})
		before, _ := dst.List(ctx, keystore.Filter{All: true})
		_, err := keystore.Copy(ctx, src, dst)
		want := fmt.Sprintf("conflicting key: key 1 (%s…) of %s has another hash in %s; nothing was copied", p1[:8], src.Addr(), dst.Addr())
		if !errors.Is(err, keystore.ErrConflict) || err.Error() != want {
			t.Fatalf("Copy error = %v\nwant %s", err, want)
		}
		after, _ := dst.List(ctx, keystore.Filter{All: true})
		if !reflect.DeepEqual(after, before) || len(auditLines(t, dst, 0, 0)) != 1 {
			t.Errorf("after a refused copy the destination changed: %+v", after)
		}
	})
	t.Run("SameHashOtherID", func(t *testing.T) {
		dst, addr := openStore(t, b)
		hash := keystore.HashKey(p1)
		execRaw(t, addr, `INSERT INTO api_keys (id, key_hash, prefix, hostname, created_at) VALUES (7, ?, ?, 'web-1', 0)`, hash[:], p1[:8])
		_, err := keystore.Copy(ctx, src, dst)
		if !errors.Is(err, keystore.ErrConflict) || !strings.Contains(err.Error(), "key 1 ("+p1[:8]+"…) of "+src.Addr()+" is key 7 in") {
			t.Fatalf("Copy error = %v, want ErrConflict naming keys 1 and 7", err)
		}
		if keys, _ := dst.List(ctx, keystore.Filter{All: true}); len(keys) != 1 {
			t.Errorf("after a refused copy the destination holds %d keys, want 1", len(keys))
		}
	})
	t.Run("SameNameOtherKey", func(t *testing.T) {
		src := openAt(t, backends[0].newAddr(t))
		named, p := generate(t, src, keystore.NewKey{Name: "web-1-telegraf", Hostname: "web-1"})
		dst, addr := openStore(t, b)
		hash := keystore.HashKey("another key")
		execRaw(t, addr, `INSERT INTO api_keys (id, key_hash, prefix, hostname, created_at, name) VALUES (7, ?, '', 'web-1', 0, 'web-1-telegraf')`, hash[:])
		_, err := keystore.Copy(ctx, src, dst)
		want := fmt.Sprintf("conflicting key: key %d (%s…) of %s is named \"web-1-telegraf\", as key 7 in %s is; nothing was copied",
			named.ID, p[:8], src.Addr(), dst.Addr())
		if !errors.Is(err, keystore.ErrConflict) || err.Error() != want {
			t.Fatalf("Copy error = %v\nwant %s", err, want)
		}
		if keys, _ := dst.List(ctx, keystore.Filter{All: true}); len(keys) != 1 {
			t.Errorf("after a refused copy the destination holds %d keys, want 1", len(keys))
		}
	})
}
