package keystore

import "database/sql"

// DollarParams lets the tests write raw statements once, in SQLite's form,
// for both backends.
var DollarParams = dollarParams

// DBStats returns the statistics of s's connection pool, so the tests can
// see how many connections the pool opened and closed.
func DBStats(s *Store) sql.DBStats { return s.db.Stats() }
