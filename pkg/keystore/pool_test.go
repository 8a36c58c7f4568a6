package keystore_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// TestSQLitePoolKeepsReaders runs 16 look-ups of unknown keys at a time
// through a cache, as a gateway does when many clients present keys it has
// not cached, and checks that the pool keeps the connections it opened for
// them rather than closing each one after its query and opening another,
// which costs a SQLite file's open, its pragmas and a read of its schema.
func TestSQLitePoolKeepsReaders(t *testing.T) {
	const readers, lookups = 16, 200
	s, _ := openStore(t, sqliteBackend)
	c := newCache(t, s, keystore.CacheOptions{})
	addr := netip.MustParseAddr("127.0.0.1")
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() {
			for range lookups {
				if _, err := c.Authenticate(context.Background(), uuid.NewString(), addr); !errors.Is(err, keystore.ErrUnknownKey) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Authenticate of an unknown key: error = %v, want ErrUnknownKey", err)
	}
	st := keystore.DBStats(s)
	t.Logf("%d look-ups by %d readers: %d connections open, %d closed for the idle limit",
		readers*lookups, readers, st.OpenConnections, st.MaxIdleClosed)
	// One connection per reader, and the one the cache holds to poll.
	if st.MaxIdleClosed != 0 || st.OpenConnections > readers+1 {
		t.Errorf("got %d connections closed for the idle limit and %d open, want 0 closed and at most %d open",
			st.MaxIdleClosed, st.OpenConnections, readers+1)
	}
}
