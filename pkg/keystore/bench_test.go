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

// BenchmarkAuthenticate measures one key check with 10, 10,000 and
// 1,000,000 keys in the store. Look-up is by an indexed hash, so the cost
// should stay flat.
func BenchmarkAuthenticate(b *testing.B) {
	for _, n := range []int{10, 10_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			s, path := openStore(b)
			_, key := generate(b, s, keystore.NewKey{Hostname: "127.0.0.1"})
			fill(b, path, n-1)
			addr := netip.MustParseAddr("127.0.0.1")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Authenticate(context.Background(), key, addr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fill inserts n random keys straight into the table, in one transaction,
// which is far quicker than n calls to Generate.
func fill(b *testing.B, path string, n int) {
	b.Helper()
	db := rawDB(b, "file:"+path+"?_pragma=busy_timeout(10000)")
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
