package keystore_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// BenchmarkAuthenticate measures one key check, a trip to the database,
// with 10, 10,000 and 1,000,000 keys in the store, on each backend. Look-up
// is by an indexed hash, so the cost should stay flat. Each store is filled
// once, outside the sub-benchmark that Go may run more than once.
func BenchmarkAuthenticate(b *testing.B) {
	forEachBackend(b, func(b *testing.B, be backend) {
		for _, n := range []int{10, 10_000, 1_000_000} {
			s, key := filled(b, be, n)
			loopback := netip.MustParseAddr("127.0.0.1")
			b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if _, err := s.Authenticate(context.Background(), key, loopback); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}

// BenchmarkStart measures what a replica does before it serves, with
// 1,000,000 keys in the store: open it (migrations included), start the
// cache, and answer the first key. The cache loads keys as they are used,
// so this should not grow with the number of keys.
func BenchmarkStart(b *testing.B) {
	forEachBackend(b, func(b *testing.B, be backend) {
		s, key := filled(b, be, 1_000_000)
		ctx := context.Background()
		loopback := netip.MustParseAddr("127.0.0.1")
		b.Run("keys=1000000", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s, err := keystore.Open(ctx, s.Addr())
				if err != nil {
					b.Fatal(err)
				}
				c, err := keystore.NewCache(ctx, s, keystore.CacheOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Authenticate(ctx, key, loopback); err != nil {
					b.Fatal(err)
				}
				c.Close()
				s.Close()
			}
		})
	})
}

// filled returns a fresh store on be holding n keys, and the value of one.
func filled(b *testing.B, be backend, n int) (*keystore.Store, string) {
	b.Helper()
	s, addr := openStore(b, be)
	_, key := generate(b, s, keystore.NewKey{Hostname: "127.0.0.1"})
	fill(b, addr, n-1)
	return s, key
}

// fill inserts n random keys straight into the table, in one transaction
// on SQLite and one statement on PostgreSQL, which is far quicker than n
// calls to Generate.
func fill(b *testing.B, addr string, n int) {
	b.Helper()
	if keystore.IsPostgres(addr) {
		execRaw(b, addr, `INSERT INTO api_keys (key_hash, prefix, hostname, created_at)
			SELECT sha256(convert_to(gen_random_uuid()::text || i, 'UTF8')), substr(md5(i::text), 1, 8), 'bench', 0
			FROM generate_series(1, ?) AS i`, n)
		execRaw(b, addr, `ANALYZE api_keys`)
		return
	}
	db := rawDB(b, "file:"+addr+"?_pragma=busy_timeout(10000)")
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare(`INSERT INTO api_keys (key_hash, prefix, hostname, created_at) VALUES (?, ?, 'bench', ?)`)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixNano()
	for i := 0; i < n; i++ {
		k := uuid.NewString()
		h := keystore.HashKey(k)
		if _, err := stmt.Exec(h[:], k[:8], now); err != nil {
			b.Fatal(err)
		}
	}
	stmt.Close()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
