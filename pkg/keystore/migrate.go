package keystore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// migrations holds the schema, one numbered file per version. The schema
// version is kept in SQLite's user_version, so a database made by the
// original setup (which never set it) is at version 0.
//
//go:embed migrations/*.sql
var migrations embed.FS

// ErrSchemaTooNew means the database was migrated by a newer metricgate than
// this one, whose schema this build cannot know is safe to use.
var ErrSchemaTooNew = errors.New("database schema is newer than this build supports")

// schemaTooNewError says which versions are involved and matches
// ErrSchemaTooNew.
type schemaTooNewError struct{ have, known int }

func (e schemaTooNewError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this build supports (%d); upgrade metricgate", e.have, e.known)
}

func (e schemaTooNewError) Is(target error) bool { return target == ErrSchemaTooNew }

// migrate brings the schema up to date inside one write transaction, so two
// processes opening a new file at once cannot both apply a migration. It
// refuses, with ErrSchemaTooNew, a database at a version it does not know.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)

	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()

	var current int
	if err := conn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(names) {
		return schemaTooNewError{current, len(names)}
	}
	if current == len(names) {
		return nil
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Re-read under the write lock: another process may have migrated.
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(names) {
		return schemaTooNewError{current, len(names)}
	}
	upgradedLegacy := false
	for i, name := range names {
		version, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, "migrations/"), "_", 2)[0])
		if err != nil || version != i+1 {
			return fmt.Errorf("migration %s is out of sequence", name)
		}
		if version <= current {
			continue
		}
		if version == 1 {
			if upgradedLegacy, err = renameLegacyTable(ctx, tx); err != nil {
				return err
			}
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if version == 1 && upgradedLegacy {
			if err := importLegacyKeys(ctx, tx, s.Now().UTC().UnixNano()); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, version)); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migrations: %w", err)
	}
	if upgradedLegacy {
		return scrub(ctx, conn)
	}
	return nil
}

// scrub leaves no trace of the plaintext keys an upgrade dropped.
// secure_delete already zeroed the dropped rows; VACUUM rebuilds the file so
// no page, free list or overflow chain keeps old content, and the
// checkpoint empties the WAL that held the rebuild.
func scrub(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("vacuum after upgrade: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("checkpoint after upgrade: %w", err)
	}
	return nil
}

// renameLegacyTable moves the original setup's table, api_keys(id, api_key,
// hostname) with plaintext keys, out of the way of the new schema. It
// reports whether there was one.
func renameLegacyTable(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx,
		`SELECT count(*) FROM pragma_table_info('api_keys') WHERE name = 'api_key'`).Scan(&n)
	if err != nil || n == 0 {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `ALTER TABLE api_keys RENAME TO legacy_api_keys`); err != nil {
		return false, fmt.Errorf("upgrade original database: %w", err)
	}
	return true, nil
}

// importLegacyKeys copies the original keys into the new table, keeping ids
// and hostnames and replacing each plaintext key by its hash, then drops the
// old table.
func importLegacyKeys(ctx context.Context, tx *sql.Tx, now int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, api_key, hostname FROM legacy_api_keys ORDER BY id`)
	if err != nil {
		return fmt.Errorf("upgrade original database: %w", err)
	}
	type legacy struct {
		id            int64
		key, hostname string
	}
	var old []legacy
	for rows.Next() {
		var l legacy
		if err := rows.Scan(&l.id, &l.key, &l.hostname); err != nil {
			rows.Close()
			return fmt.Errorf("upgrade original database: %w", err)
		}
		old = append(old, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("upgrade original database: %w", err)
	}
	for _, l := range old {
		hash := HashKey(l.key)
		host, err := CanonicalHostname(l.hostname)
		if err != nil {
			// Keep what the original setup accepted; it simply never matches
			// a caller until an admin fixes it.
			host = l.hostname
		}
		prefix := l.key
		if len(prefix) > PrefixLen {
			prefix = prefix[:PrefixLen]
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO api_keys (id, key_hash, prefix, hostname, description, created_at)
			VALUES (?, ?, ?, ?, 'imported from the original database', ?)`, l.id, hash[:], prefix, host, now)
		if err != nil {
			return fmt.Errorf("upgrade original database: key %d: %w", l.id, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE legacy_api_keys`); err != nil {
		return fmt.Errorf("upgrade original database: %w", err)
	}
	return nil
}
