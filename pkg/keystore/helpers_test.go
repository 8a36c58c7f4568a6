package keystore_test

// Helpers that the key store's tests share: a fresh Store, keys in it, and
// the database file read and written with SQLite alone, to set up or
// inspect what the Store would not.

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// openStore opens a fresh store in a temp dir and closes it after the test.
func openStore(t testing.TB) (*keystore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.db")
	s, err := keystore.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// generate makes a key in s, failing the test if it cannot.
func generate(t testing.TB, s *keystore.Store, nk keystore.NewKey) (keystore.Key, string) {
	t.Helper()
	k, plain, err := s.Generate(context.Background(), nk)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", nk, err)
	}
	return k, plain
}

// rawDB opens the database file at path with SQLite alone, without the
// Store. The caller closes it.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// execRaw runs one statement on the database file at path with SQLite
// alone, and closes it.
func execRaw(t *testing.T, path, query string, args ...any) {
	t.Helper()
	raw := rawDB(t, path)
	defer raw.Close()
	if _, err := raw.Exec(query, args...); err != nil {
		t.Fatalf("%.60s: %v", query, err)
	}
}

// originalDatabase makes a database in the original setup's format, with
// plaintext keys, in a temp dir: one key for each of hosts, whose ids are
// 1, 2, ... in order. It returns the file's path and the keys.
func originalDatabase(t *testing.T, hosts ...string) (string, []string) {
	t.Helper()
	keys := make([]string, len(hosts))
	for i := range hosts {
		keys[i] = uuid.NewString()
	}
	return originalDatabaseOf(t, keys, hosts), keys
}

// originalDatabaseOf makes a database in the original setup's format
// holding keys[i] for hosts[i], with ids 1, 2, ... in order, in a temp
// dir, and returns its path.
func originalDatabaseOf(t *testing.T, keys, hosts []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api_keys.db")
	raw := rawDB(t, path)
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TABLE api_keys (id INTEGER PRIMARY KEY AUTOINCREMENT, api_key TEXT NOT NULL UNIQUE, hostname TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, h := range hosts {
		if _, err := raw.Exec(`INSERT INTO api_keys (api_key, hostname) VALUES (?, ?)`, keys[i], h); err != nil {
			t.Fatal(err)
		}
	}
	return path
}
