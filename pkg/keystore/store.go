// Package keystore is metricgate's store of API keys: UUID keys bound to the
// host that may use them, kept in a SQLite file that keyctl and a running
// apiserver share.
//
// A key's plaintext is shown once, when it is made, and never stored: the
// database keeps its SHA-256 and an 8-character display prefix, so a copied
// database file reveals no key. Look-up is by hash through a unique index, so
// the cost of checking a key does not grow with the number of keys.
//
// A key's policy (expiry, scopes, measurements, rate, burst, description) is
// checked by one set of rules, in policy.go: ParsePolicy applies them to what
// a person typed or sent, and the Store to every key it writes.
package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Store is a key store backed by one SQLite file. It is safe for concurrent
// use, and several processes may open the same file at once.
//
// Every change to a key is recorded in an audit log (see Audit) in the same
// transaction as the change; recording usage is not.
type Store struct {
	db       *sql.DB
	resolver *resolver

	// Now returns the current time. Tests replace it to cross expiry times
	// without waiting.
	Now func() time.Time
	// Actor names who is making changes, for the audit log, such as
	// "keyctl:alice@admin-1". Open sets it to "unknown".
	Actor string
}

// Open opens the key store at path, creating it (readable by its owner only)
// if it does not exist, and brings its schema up to date. A database made by
// the original setup, with plaintext keys, is upgraded in place: ids and
// hostnames are kept, every key keeps working, and no plaintext remains in
// the file afterwards. It returns ErrSchemaTooNew for a database a newer
// metricgate has migrated.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("keystore: empty database path")
	}
	db, err := openSQLite(path)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, resolver: newResolver(), Now: time.Now, Actor: unknownActor}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("keystore: %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping reports whether the database can be read.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, queryPing).Scan(&n); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}
