package keystore_test

// Tests of SQLite's change log: the triggers on api_keys that log every
// change to a key, whoever writes it, and the Cache that forgets only the
// keys they name.

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// pollingCache returns a cache over s that polls every 5 ms, and the clock
// it measures staleness by, which waitPolls moves.
func pollingCache(t *testing.T, s *keystore.Store) (*keystore.Cache, *testenv.Clock) {
	t.Helper()
	clock := testenv.NewClock(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	return newCache(t, s, keystore.CacheOptions{Poll: 5 * time.Millisecond, Now: clock.Now}), clock
}

// waitPolls returns once c has finished a whole poll that began after
// waitPolls was called, and so has seen every commit made before. Each
// poll notes when it heard from the store by c's clock: once it reads the
// time the clock was moved to, a poll has ended since; the poll after that
// one began after the call.
func waitPolls(t *testing.T, c *keystore.Cache, clock *testenv.Clock) {
	t.Helper()
	for range 2 {
		clock.Advance(time.Millisecond)
		waitFor(t, "the cache to poll", func() bool { return c.Behind() == 0 })
	}
}

// cacheKeys makes n keys for 127.0.0.1 in s and, once c has seen them
// made (so that it does not forget them for that), authenticates each
// through c so that c holds them. It returns them with their values.
func cacheKeys(t *testing.T, s *keystore.Store, c *keystore.Cache, clock *testenv.Clock, n int) ([]keystore.Key, []string) {
	t.Helper()
	var keys []keystore.Key
	var plains []string
	for range n {
		k, p := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})
		keys, plains = append(keys, k), append(plains, p)
	}
	waitPolls(t, c, clock)
	for i, p := range plains {
		waitAuth(t, c, p, nil, nil, time.Second)
		if !keystore.Cached(c, p) {
			t.Fatalf("key %d is not cached after Authenticate", keys[i].ID)
		}
	}
	return keys, plains
}

// TestSQLiteCacheKeepsKeysThroughOtherWrites checks that commits that
// change no key (the gateway's own usage, another process's usage and
// audit entries) leave the cache's keys in memory: the next request for a
// cached key costs no look-up.
func TestSQLiteCacheKeepsKeysThroughOtherWrites(t *testing.T) {
	s, addr := openStore(t, sqliteBackend)
	ctx := context.Background()
	c, clock := pollingCache(t, s)
	other := openAt(t, addr)
	other.Node = "replica-2"
	keys, plains := cacheKeys(t, s, c, clock, 2)

	now := time.Now()
	for _, st := range []*keystore.Store{s, other} {
		if err := st.RecordUsage(ctx, map[int64]keystore.Usage{keys[0].ID: {LastUsedAt: now, LastUsedAddr: "127.0.0.1", Requests: 3, Points: 9}}); err != nil {
			t.Fatal(err)
		}
	}
	execRaw(t, addr, `INSERT INTO audit_log (at, actor, key_id, action) VALUES (?, 'test', ?, 'note')`, now.UnixNano(), keys[1].ID)
	waitPolls(t, c, clock)

	for i, p := range plains {
		if !keystore.Cached(c, p) {
			t.Errorf("key %d was forgotten after writes that changed no key; want it still cached", keys[i].ID)
		}
	}
	if k, _ := other.Get(ctx, keys[0].ID); k.Requests != 6 {
		t.Errorf("key %d has %d requests, want 6: the usage was not written", keys[0].ID, k.Requests)
	}
}

// TestSQLiteCachePollsTheWALIndex checks that a poll asks data_version
// only when a commit changed the wal-index header: an idle store costs a
// pread a poll, not a query, and a key revoked through another connection
// is still seen at the next poll, not at the backstop a second later.
func TestSQLiteCachePollsTheWALIndex(t *testing.T) {
	s, addr := openStore(t, sqliteBackend)
	ctx := context.Background()
	c, clock := pollingCache(t, s)
	other := openAt(t, addr)
	keys, plains := cacheKeys(t, s, c, clock, 1)

	before := keystore.CacheQueries(c)
	for range 10 { // 20 polls, 100 ms or more, nothing committed
		waitPolls(t, c, clock)
	}
	if asked := keystore.CacheQueries(c) - before; asked > 1 {
		t.Errorf("%d of about 20 polls of an idle store asked data_version; want at most the backstop's one", asked)
	}

	start := time.Now()
	if _, err := other.Revoke(ctx, keys[0].ID); err != nil {
		t.Fatal(err)
	}
	waitPolls(t, c, clock)
	if _, err := c.Authenticate(ctx, plains[0], netip.MustParseAddr("127.0.0.1")); !errors.Is(err, keystore.ErrRevoked) {
		if time.Since(start) < time.Second { // the backstop had not run yet
			t.Fatalf("two polls after a revoke, Authenticate = %v; want ErrRevoked", err)
		}
	}
}

// TestSQLiteCacheForgetsOnlyChangedKeys changes keys one at a time, through
// another Store as keyctl would and with raw statements as a script or an
// operator would, and checks that each change reaches the cache while the
// keys not changed stay cached.
func TestSQLiteCacheForgetsOnlyChangedKeys(t *testing.T) {
	s, addr := openStore(t, sqliteBackend)
	ctx := context.Background()
	c, clock := pollingCache(t, s)
	other := openAt(t, addr)
	keys, plains := cacheKeys(t, s, c, clock, 5)
	loopback := netip.MustParseAddr("127.0.0.1")
	unchanged := func(t *testing.T, changed int) {
		t.Helper()
		waitPolls(t, c, clock)
		for i, p := range plains {
			if i > changed && !keystore.Cached(c, p) {
				t.Errorf("key %d was forgotten after a change to key %d; want it still cached", keys[i].ID, keys[changed].ID)
			}
		}
	}

	rate := 7.0
	if _, err := other.Update(ctx, keys[0].ID, keystore.Update{Rate: &rate}); err != nil {
		t.Fatal(err)
	}
	waitAuth(t, c, plains[0], nil, func(k keystore.Key) bool { return k.Rate == 7 }, time.Second)
	unchanged(t, 0)

	if _, err := other.Revoke(ctx, keys[1].ID); err != nil {
		t.Fatal(err)
	}
	waitAuth(t, c, plains[1], keystore.ErrRevoked, nil, time.Second)
	unchanged(t, 1)

	execRaw(t, addr, `UPDATE api_keys SET hostname = '192.0.2.1' WHERE id = ?`, keys[2].ID)
	waitAuth(t, c, plains[2], keystore.ErrHostMismatch, nil, time.Second)
	unchanged(t, 2)

	execRaw(t, addr, `DELETE FROM api_keys WHERE id = ?`, keys[3].ID)
	waitAuth(t, c, plains[3], keystore.ErrUnknownKey, nil, time.Second)
	unchanged(t, 3)

	// A key whose id changes is logged under both ids: the cache holds it
	// under the old one.
	execRaw(t, addr, `UPDATE api_keys SET id = 1000 WHERE id = ?`, keys[4].ID)
	waitAuth(t, c, plains[4], nil, func(k keystore.Key) bool { return k.ID == 1000 }, time.Second)
	if _, err := c.Authenticate(ctx, plains[0], loopback); err != nil {
		t.Errorf("key %d: %v, want it still valid", keys[0].ID, err)
	}
}

// TestSQLiteCacheFlushesWhenLogLost revokes a cached key where the cache
// cannot read it in the log after the last change it applied, and checks
// that the cache then forgets every key, so the revocation takes effect:
//
//   - Pruned: the revocation, in one transaction with more changes than
//     the log keeps, is pruned before the cache reads it (and the log
//     stays bounded);
//   - Rewound: the log starts again from 1, as in an older copy of the
//     file restored over it, so the revocation has an id the cache has
//     passed.
func TestSQLiteCacheFlushesWhenLogLost(t *testing.T) {
	revoke := `UPDATE api_keys SET revoked_at = 1 WHERE id = 1`
	for _, tt := range []struct {
		name  string
		stmts []string
	}{
		// Changes to a key no one has: 10,001 of them push the revocation out.
		{"Pruned", []string{revoke, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10001)
			INSERT INTO key_changes (key_id) SELECT 999999 FROM n`}},
		{"Rewound", []string{`DELETE FROM key_changes`, `DELETE FROM sqlite_sequence WHERE name = 'key_changes'`, revoke}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, addr := openStore(t, sqliteBackend)
			c, clock := pollingCache(t, s)
			keys, plains := cacheKeys(t, s, c, clock, 3)
			if keys[0].ID != 1 {
				t.Fatalf("first key has id %d, want 1", keys[0].ID)
			}
			raw := rawDB(t, addr)
			defer raw.Close()
			tx, err := raw.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			for _, stmt := range tt.stmts {
				if _, err := tx.Exec(stmt); err != nil {
					t.Fatalf("%.40s: %v", stmt, err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if tt.name == "Pruned" {
				if n := queryInt(t, addr, `SELECT count(*) FROM key_changes WHERE key_id = 1`); n != 0 {
					t.Fatalf("the revocation is still in the log (%d entries): the test needs it pruned", n)
				}
				if n := queryInt(t, addr, `SELECT count(*) FROM key_changes`); n != 10000 {
					t.Errorf("the log holds %d changes, want the newest 10000", n)
				}
			}

			waitAuth(t, c, plains[0], keystore.ErrRevoked, nil, time.Second)
			for i, p := range plains[1:] {
				if keystore.Cached(c, p) {
					t.Errorf("key %d is still cached after the cache lost its place in the log; want every key forgotten", keys[i+1].ID)
				}
			}
			if _, err := c.Authenticate(context.Background(), plains[1], netip.MustParseAddr("127.0.0.1")); err != nil {
				t.Errorf("key %d after the flush: %v, want it valid", keys[1].ID, err)
			}
		})
	}
}

// TestSQLiteChangeLogMigration opens a database made by the original setup
// and one of schema version 6, the last without the change log, and checks
// that after the upgrade every kind of change to a key is logged, an id
// change under both ids, and that a cache follows it.
func TestSQLiteChangeLogMigration(t *testing.T) {
	for _, tt := range []struct {
		name string
		path func(t *testing.T) (string, string)
	}{
		{"Original", func(t *testing.T) (string, string) {
			path, keys := originalDatabase(t, "127.0.0.1")
			return path, keys[0]
		}},
		{"Version6", func(t *testing.T) (string, string) {
			path := databaseAt(t, 6)
			plain := uuid.NewString()
			hash := keystore.HashKey(plain)
			execRaw(t, path, `INSERT INTO api_keys (key_hash, prefix, hostname, created_at) VALUES (?, ?, '127.0.0.1', 0)`, hash[:], plain[:8])
			return path, plain
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path, plain := tt.path(t)
			s := openAt(t, path)
			if got, want := schemaVersion(t, path), migrationCount(t, path); got != want {
				t.Fatalf("schema version = %d, want %d", got, want)
			}
			c, _ := pollingCache(t, s)
			waitAuth(t, c, plain, nil, nil, time.Second)
			logged := func() int64 { return queryInt(t, path, `SELECT count(*) FROM key_changes`) }
			before := logged()
			execRaw(t, path, `UPDATE api_keys SET description = 'changed' WHERE id = 1`)
			execRaw(t, path, `UPDATE api_keys SET id = 2 WHERE id = 1`)
			execRaw(t, path, `DELETE FROM api_keys WHERE id = 2`)
			if got, want := logged()-before, int64(4); got != want {
				t.Errorf("%d changes logged for an update, an id change and a delete, want %d", got, want)
			}
			waitAuth(t, c, plain, keystore.ErrUnknownKey, nil, time.Second)
			_, plain2 := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})
			if got, want := logged()-before, int64(5); got != want {
				t.Errorf("%d changes logged after a key was made, want %d", got, want)
			}
			waitAuth(t, c, plain2, nil, nil, time.Second)
		})
	}
}
