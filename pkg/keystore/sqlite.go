package keystore

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// This file holds what is particular to SQLite: how the file is opened and
// the statements it writes its own way. Migrations (migrate.go) and the
// cache's change detection (cache.go) use PRAGMAs of their own.

// sqliteDialect runs the shared statements as they are written.
var sqliteDialect = &dialect{
	name: "sqlite",
	bind: asIs,
	upsertUsage: upsertUsage(`(SELECT value ->> 'id' AS id, value ->> 'at' AS at, value ->> 'addr' AS addr,
		value ->> 'requests' AS requests, value ->> 'points' AS points FROM json_each(?)) u`, "MAX"),
}

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
	db.SetMaxIdleConns(sqliteMaxIdle)
	db.SetConnMaxIdleTime(sqliteMaxIdleTime)
	return db, nil
}

// sqliteMaxIdle is how many idle connections the pool keeps for readers.
// database/sql keeps 2 by default: when more look-ups than that run at
// once (a gateway's requests presenting keys its cache does not hold), each
// extra connection is closed after its query and a new one opened for the
// next, opening the file, running the DSN's pragmas and reading the schema
// again, which costs several times the look-up itself. The connection a Cache
// holds to poll is not idle and does not count against it.
//
// The number of open connections is deliberately not capped. A reader in
// WAL mode never waits for a writer, but a capped pool would make it wait
// for a connection, and the writers hold theirs while they wait up to the
// busy timeout for another process's write lock; a cap would also turn any
// code that holds one connection (the Cache's, migrate's, a transaction)
// while asking for another into a deadlock once the cap is reached.
// Concurrency is bounded by the callers instead, and beyond sqliteMaxIdle
// a burst only costs reopening.
const sqliteMaxIdle = 16

// sqliteMaxIdleTime closes a connection that has been idle this long. A
// SQLite connection does not go stale, so none is closed for its age, but
// each keeps a page cache of its own (up to 2 MB by SQLite's default), and
// a burst need not keep sqliteMaxIdle of them for the life of the process.
const sqliteMaxIdleTime = 5 * time.Minute
