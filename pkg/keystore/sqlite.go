package keystore

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// This file holds what is particular to SQLite: how the file is opened and
// the statements the Store runs, in SQLite's dialect (? and ?N parameters,
// RETURNING, the two-argument MAX). Migrations (migrate.go) and the cache's
// change detection (cache.go) use PRAGMAs of their own.

// openSQLite opens the database file at path, creating it readable by its
// owner only if it does not exist, and making it so if it is not.
func openSQLite(path string) (*sql.DB, error) {
	// Create the file ourselves so it is 0600: SQLite would use the umask,
	// and its -wal and -shm files copy the main file's permissions.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("keystore: create %s: %w", path, err)
	} else if err := tightenMode(path); err != nil {
		return nil, err
	}
	// WAL lets readers (the apiserver) run beside a writer (keyctl); the busy
	// timeout makes a writer wait for another instead of failing with
	// "database is locked"; BEGIN IMMEDIATE takes the write lock at the start
	// of a transaction, so two writers never deadlock upgrading read locks.
	// secure_delete overwrites freed content, which the upgrade relies on.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_pragma=synchronous(normal)" +
		"&_pragma=foreign_keys(1)&_pragma=secure_delete(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("keystore: open %s: %w", path, err)
	}
	return db, nil
}

// keyColumns are the columns scanKey reads, in its order.
const keyColumns = `id, prefix, hostname, description, scopes, measurements, rate, burst,
	created_at, revoked_at, expires_at, replaced_by, last_used_at, last_used_addr, request_count, point_count`

// The Store's statements. Those that return keys return keyColumns.
const (
	queryPing = `SELECT 1 FROM api_keys LIMIT 1`

	queryInsertKey = `INSERT INTO api_keys
		(key_hash, prefix, hostname, description, scopes, measurements, rate, burst, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ` + keyColumns
	queryKeyByID    = `SELECT ` + keyColumns + ` FROM api_keys WHERE id = ?`
	queryKeyByHash  = `SELECT key_hash, ` + keyColumns + ` FROM api_keys WHERE key_hash = ?`
	queryKeys       = `SELECT ` + keyColumns + ` FROM api_keys ORDER BY id`
	queryKeysOfHost = `SELECT ` + keyColumns + ` FROM api_keys WHERE hostname = ? ORDER BY id`
	queryRevokeKey  = `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING ` + keyColumns
	queryRevokeHost = `UPDATE api_keys SET revoked_at = ?1
		WHERE hostname = ?2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)
		RETURNING ` + keyColumns
	// queryRotateInsert copies the policy of key ?4 to a new key.
	queryRotateInsert = `INSERT INTO api_keys
		(key_hash, prefix, hostname, description, scopes, measurements, rate, burst, created_at, expires_at)
		SELECT ?, ?, hostname, description, scopes, measurements, rate, burst, ?, expires_at FROM api_keys WHERE id = ?
		RETURNING id`
	queryRotateRetire = `UPDATE api_keys SET expires_at = ?, replaced_by = ? WHERE id = ?`
	queryRecordUsage  = `UPDATE api_keys SET
		last_used_at = MAX(COALESCE(last_used_at, 0), ?),
		last_used_addr = CASE WHEN ? >= COALESCE(last_used_at, 0) THEN ? ELSE last_used_addr END,
		request_count = request_count + ?, point_count = point_count + ? WHERE id = ?`
	queryInsertAudit = `INSERT INTO audit_log (at, actor, key_id, action, detail) VALUES (?, ?, ?, ?, ?)`
)

// queryUpdateKey sets the given "column = ?" assignments on the key whose
// id is the last argument.
func queryUpdateKey(sets string) string {
	return `UPDATE api_keys SET ` + sets + ` WHERE id = ? RETURNING ` + keyColumns
}
