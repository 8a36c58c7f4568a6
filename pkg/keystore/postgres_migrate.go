package keystore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// pgMigrations holds the PostgreSQL schema, one numbered file per version
// as migrations holds SQLite's. The version applied is kept in the
// schema_version table.
//
//go:embed migrations/postgres/*.sql
var pgMigrations embed.FS

// migrationLock is the advisory lock every migration runs under, so that
// replicas starting together apply each migration once.
const migrationLock int64 = 0x6d67_6d696772 // "mg" "migr"

// migratePostgres applies the migrations the database lacks, each in a
// transaction of its own under migrationLock. It refuses, with
// ErrSchemaTooNew, a database at a version it does not know.
func (s *Store) migratePostgres(ctx context.Context) error {
	names, err := fs.Glob(pgMigrations, "migrations/postgres/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for i, name := range names {
		v, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, "migrations/postgres/"), "_", 2)[0])
		if err != nil || v != i+1 {
			return fmt.Errorf("migration %s is out of sequence", name)
		}
	}
	for {
		done, err := s.migrateNextPostgres(ctx, names)
		if err != nil || done {
			return err
		}
	}
}

// migrateNextPostgres applies the first migration the database lacks and
// reports whether there was none left to apply.
func (s *Store) migrateNextPostgres(ctx context.Context, names []string) (done bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, migrationLock); err != nil {
		return false, fmt.Errorf("lock for migrations: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return false, fmt.Errorf("read schema version: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(max(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return false, fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case current > len(names):
		return false, schemaTooNewError{current, len(names)}
	case current == len(names):
		return true, tx.Commit()
	}
	name := names[current]
	body, err := pgMigrations.ReadFile(name)
	if err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return false, fmt.Errorf("migration %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, current+1); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit migration %s: %w", name, err)
	}
	return false, nil
}
