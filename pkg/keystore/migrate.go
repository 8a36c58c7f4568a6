package keystore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"
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
	scrubAfter := false
	for i, name := range names {
		version, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, "migrations/"), "_", 2)[0])
		if err != nil || version != i+1 {
			return fmt.Errorf("migration %s is out of sequence", name)
		}
		if version <= current {
			continue
		}
		scrubbed, err := s.applyMigration(ctx, tx, name, version)
		if err != nil {
			return err
		}
		scrubAfter = scrubAfter || scrubbed
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migrations: %w", err)
	}
	if scrubAfter {
		return scrub(ctx, conn)
	}
	return nil
}

// applyMigration runs migration name, of the given version, and the Go
// steps that go with it: version 1 imports the original setup's table,
// version 3 clears display prefixes that are whole legacy keys. It
// reports whether it dropped key material that scrub must then erase.
func (s *Store) applyMigration(ctx context.Context, tx *sql.Tx, name string, version int) (scrub bool, err error) {
	upgradedLegacy := false
	if version == 1 {
		if upgradedLegacy, err = renameLegacyTable(ctx, tx); err != nil {
			return false, err
		}
	}
	body, err := migrations.ReadFile(name)
	if err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, string(body))
	if err != nil {
		return false, fmt.Errorf("migration %s: %w", name, err)
	}
	switch {
	case upgradedLegacy:
		err = importLegacyKeys(ctx, tx, s.Now().UTC().UnixNano())
		scrub = true
	case version == 3:
		var cleared int64
		cleared, err = clearWholeKeyPrefixes(ctx, tx)
		n, _ := res.RowsAffected()
		scrub = cleared+n > 0
	}
	if err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, version)); err != nil {
		return false, err
	}
	return scrub, nil
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
		// Only a UUID's first characters reveal too little of it to
		// matter; any other value may be short, and gets no prefix.
		prefix := ""
		if u, err := uuid.Parse(strings.TrimSpace(l.key)); err == nil {
			prefix = u.String()[:PrefixLen]
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

// clearWholeKeyPrefixes clears the display prefix of each key whose prefix
// is its whole value, as version 1 stored a legacy key of 8 characters,
// and returns how many it cleared.
func clearWholeKeyPrefixes(ctx context.Context, tx *sql.Tx) (int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, key_hash, prefix FROM api_keys WHERE prefix <> ''`)
	if err != nil {
		return 0, fmt.Errorf("clear legacy prefixes: %w", err)
	}
	var whole []int64
	for rows.Next() {
		var (
			id     int64
			hash   []byte
			prefix string
		)
		if err := rows.Scan(&id, &hash, &prefix); err != nil {
			rows.Close()
			return 0, fmt.Errorf("clear legacy prefixes: %w", err)
		}
		if h := sha256.Sum256([]byte(prefix)); bytes.Equal(h[:], hash) {
			whole = append(whole, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("clear legacy prefixes: %w", err)
	}
	for _, id := range whole {
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET prefix = '' WHERE id = ?`, id); err != nil {
			return 0, fmt.Errorf("clear legacy prefixes: key %d: %w", id, err)
		}
	}
	return int64(len(whole)), nil
}

// Legacy reports whether k was imported from the original setup's
// database with a value that is not a UUID, and so has no display prefix:
// such a value may be short or guessable, and the key should be rotated
// (keyctl list --legacy lists them).
func (k Key) Legacy() bool { return k.Prefix == "" }

// tightenMode removes the group's and others' permissions from the key
// store's file and its -wal and -shm files, which a database made by the
// original setup (or copied with a umask of 022) has: the file holds every
// key's hash and, before its upgrade, plaintext keys. It returns an error
// naming the file when it cannot.
func tightenMode(path string) error {
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("keystore: %w", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(f, perm&^0o077); err != nil {
				return fmt.Errorf("keystore: %s is mode %04o, open to others, and could not be made %04o: %w", f, perm, perm&^0o077, err)
			}
		}
	}
	return nil
}
