// Package keystore is metricgate's store of API keys: UUID keys bound to the
// host that may use them, kept in a SQLite file that keyctl and a running
// apiserver share, or in a PostgreSQL database that several apiservers
// share.
//
// A key's plaintext is shown once, when it is made, and never stored: the
// database keeps its SHA-256 and an 8-character display prefix, so a copied
// database reveals no key. Look-up is by hash through a unique index, so the
// cost of checking a key does not grow with the number of keys.
//
// A key's policy (expiry, scopes, measurements, rate, burst, description,
// its own bucket and series budget) is checked by one set of rules, in
// policy.go: ParsePolicy applies them to what a person typed or sent, and
// the Store to every key it writes. A key whose points InfluxDB keeps
// refusing is quarantined (quarantine.go) until an admin releases it.
//
// Both backends run the same statements (queries.go) through database/sql;
// what differs (placeholders, the usage upsert, migrations, the change log
// that tells other replicas what changed) is in dialect.go, sqlite.go and
// postgres.go.
package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is a key store backed by one SQLite file or one PostgreSQL
// database. It is safe for concurrent use, and several processes may open
// the same store at once.
//
// Every change to a key is recorded in an audit log (see Audit) in the same
// transaction as the change; recording usage is not.
type Store struct {
	db       boundDB
	dialect  *dialect
	addr     string // the address as it may be shown: no password
	resolver *resolver

	// pool and listen are set on PostgreSQL: the pool behind db, and the
	// configuration of the Cache's own connection that LISTENs.
	pool   *pgxpool.Pool
	listen *pgx.ConnConfig

	// Now returns the current time. Tests replace it to cross expiry times
	// without waiting.
	Now func() time.Time
	// Actor names who is making changes, for the audit log, such as
	// "keyctl:alice@admin-1". Open sets it to "unknown".
	Actor string
	// Node names the replica this Store serves, such as the apiserver's
	// --node-name: the audit log records it beside the actor, and usage is
	// kept per node, so replicas never write the same row. Empty for
	// keyctl.
	Node string
}

// Options tune how a Store connects. The zero value is the defaults.
type Options struct {
	// Timeout bounds each attempt to connect to PostgreSQL, Open's first
	// included; 0 means 5 s. A SQLite file ignores it.
	Timeout time.Duration
	// Name is sent to PostgreSQL as the connections' application_name, so
	// an operator can tell replicas apart in pg_stat_activity.
	Name string
}

// defaultTimeout is Options.Timeout when it is 0.
const defaultTimeout = 5 * time.Second

// IsPostgres reports whether addr names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than a SQLite file.
func IsPostgres(addr string) bool {
	lower := strings.ToLower(addr)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// Open opens the key store at addr with the default Options; see OpenWith.
func Open(ctx context.Context, addr string) (*Store, error) {
	return OpenWith(ctx, addr, Options{})
}

// OpenWith opens the key store at addr and brings its schema up to date.
// An addr starting postgres:// or postgresql:// is a PostgreSQL database,
// which must exist; anything else is the path of a SQLite file, created
// (readable by its owner only) if it does not exist.
//
// A SQLite database made by the original setup, with plaintext keys, is
// upgraded in place: ids and hostnames are kept, every key keeps working,
// and no plaintext remains in the file afterwards.
//
// It returns ErrSchemaTooNew for a database a newer metricgate has
// migrated, and for a PostgreSQL server it cannot use an error of one line
// that names the server's host and port but never the password.
func OpenWith(ctx context.Context, addr string, o Options) (*Store, error) {
	if addr == "" {
		return nil, errors.New("keystore: empty database path")
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	s := &Store{resolver: newResolver(), Now: time.Now, Actor: unknownActor, addr: addr}
	if IsPostgres(addr) {
		if err := s.openPostgres(ctx, addr, o); err != nil {
			return nil, err
		}
		return s, nil
	}
	sq, err := openSQLite(addr)
	if err != nil {
		return nil, err
	}
	s.dialect = sqliteDialect
	s.db = boundDB{sq, s.dialect}
	if err := s.migrate(ctx); err != nil {
		sq.Close()
		return nil, fmt.Errorf("keystore: %s: %w", addr, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	err := s.db.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return err
}

// Addr returns the address the store was opened at, with any password
// replaced by xxxxx, for messages.
func (s *Store) Addr() string { return s.addr }

// Ping reports whether the database can be read.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, queryPing).Scan(&n); err != nil && !isNoRows(err) {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}
