package keystore

import "database/sql"

// DollarParams lets the tests write raw statements once, in SQLite's form,
// for both backends.
var DollarParams = dollarParams

// DBStats returns the statistics of s's connection pool, so the tests can
// see how many connections the pool opened and closed.
func DBStats(s *Store) sql.DBStats { return s.db.Stats() }

// Cached reports whether c holds the key plain, so the tests can see which
// keys a change to the store made the cache forget, and so read again.
func Cached(c *Cache, plain string) bool {
	hash := HashKey(plain)
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.keys[hash]
	return ok
}

// CacheQueries returns how many of c's polls asked SQLite's data_version,
// so the tests can see the polls that read only the wal-index header.
func CacheQueries(c *Cache) int64 { return c.queries.Load() }
