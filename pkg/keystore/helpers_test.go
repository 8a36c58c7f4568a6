package keystore_test

// Helpers that the key store's tests share: the backends every behaviour
// test runs on, a fresh Store on each, keys in it, and the database read
// and written without the Store, to set up or inspect what the Store would
// not.

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver for raw access

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// backend makes stores of one kind for the behaviour suite.
type backend struct {
	name string
	// newAddr returns the address of a fresh, empty store for the test.
	newAddr func(t testing.TB) string
}

func (b backend) postgres() bool { return b.name == "PostgreSQL" }

// backends are the key store's backends: every behaviour test runs on each.
var backends = []backend{
	{"SQLite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "keys.db") }},
	{"PostgreSQL", func(t testing.TB) string { return testenv.PostgreSQL(t) }},
}

// sqliteBackend and postgresBackend name the backends for the tests of
// one alone.
var sqliteBackend, postgresBackend = backends[0], backends[1]

// forEachBackend runs test as a subtest named for each backend.
func forEachBackend[T interface {
	testing.TB
	Run(string, func(T)) bool
}](t T, test func(t T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t T) { test(t, b) })
	}
}

// openStore opens a fresh store on b and closes it after the test. It
// returns the store and its address.
func openStore(t testing.TB, b backend) (*keystore.Store, string) {
	t.Helper()
	addr := b.newAddr(t)
	return openAt(t, addr), addr
}

// openAt opens the store at addr and closes it after the test.
func openAt(t testing.TB, addr string) *keystore.Store {
	t.Helper()
	s, err := keystore.Open(context.Background(), addr)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
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

// rawDB opens the database at addr, a SQLite file or a PostgreSQL URL,
// without the Store. The caller closes it.
func rawDB(t testing.TB, addr string) *sql.DB {
	t.Helper()
	driver := "sqlite"
	if keystore.IsPostgres(addr) {
		driver = "pgx"
	}
	raw, err := sql.Open(driver, addr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// bind rewrites query, written with SQLite's ? parameters, for the
// database at addr.
func bind(addr, query string) string {
	if keystore.IsPostgres(addr) {
		return keystore.DollarParams(query)
	}
	return query
}

// execRaw runs one statement, written with SQLite's ? parameters, on the
// database at addr without the Store.
func execRaw(t testing.TB, addr, query string, args ...any) {
	t.Helper()
	raw := rawDB(t, addr)
	defer raw.Close()
	if _, err := raw.Exec(bind(addr, query), args...); err != nil {
		t.Fatalf("%.60s: %v", query, err)
	}
}

// queryInt runs a query that returns one integer on the database at addr.
func queryInt(t testing.TB, addr, query string, args ...any) int64 {
	t.Helper()
	raw := rawDB(t, addr)
	defer raw.Close()
	var n int64
	if err := raw.QueryRow(bind(addr, query), args...).Scan(&n); err != nil {
		t.Fatalf("%.60s: %v", query, err)
	}
	return n
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
