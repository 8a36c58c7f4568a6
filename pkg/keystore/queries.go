package keystore

// The statements both backends run, written in SQLite's form (? and ?N
// parameters); db and tx bind them to PostgreSQL's as they run. Those that
// return keys return keyColumns.

// policyColumns are the columns of a key that say what it may do.
const policyColumns = `id, prefix, hostname, description, scopes, measurements, rate, burst,
	created_at, revoked_at, expires_at, replaced_by,
	name, managed_by,
	bucket, max_series, quarantined_at, quarantine_reason`

// keyColumns are the columns scanKey reads, in its order. A key's usage is
// the sum over the nodes that recorded it (key_usage), its last use the
// latest of theirs.
const keyColumns = policyColumns + `,
	(SELECT max(u.last_used_at) FROM key_usage u WHERE u.key_id = api_keys.id),
	(SELECT u.last_used_addr FROM key_usage u WHERE u.key_id = api_keys.id AND u.last_used_at IS NOT NULL
		ORDER BY u.last_used_at DESC LIMIT 1),
	(SELECT CAST(COALESCE(sum(u.requests), 0) AS BIGINT) FROM key_usage u WHERE u.key_id = api_keys.id),
	(SELECT CAST(COALESCE(sum(u.points), 0) AS BIGINT) FROM key_usage u WHERE u.key_id = api_keys.id)`

// authColumns are keyColumns for authentication, which needs no usage:
// without the four look-ups of key_usage (and the statement's parse, on
// SQLite) a key check takes 19 µs instead of 44 on SQLite.
const authColumns = policyColumns + `, NULL, NULL, 0, 0`

const (
	queryPing = `SELECT 1 FROM api_keys LIMIT 1`

	queryInsertKey = `INSERT INTO api_keys
		(key_hash, prefix, hostname, description, scopes, measurements, rate, burst, created_at, expires_at,
		name, managed_by, bucket, max_series)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ` + keyColumns
	queryKeyByName = `SELECT ` + keyColumns + ` FROM api_keys WHERE name = ?
		ORDER BY CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END, id DESC LIMIT 1`
	// queryManagedKeys reads, without usage, the keys a plan weighs: those
	// not revoked that have a name, then those without one that the maker
	// ?1 made. Each half is read through an index, so a plan does not read
	// every key of a store of millions: an OR of the two, a UNION or an
	// ORDER BY scans the table (0.1 to 0.3 s for 1,000,000 keys on SQLite,
	// against 0.1 ms). Names are never empty, so name > '' is IS NOT NULL
	// in a form the index serves. Rows come in no particular order.
	queryManagedKeys = `SELECT ` + authColumns + ` FROM api_keys WHERE revoked_at IS NULL AND name > ''
		UNION ALL SELECT ` + authColumns + ` FROM api_keys
		WHERE managed_by = ? AND revoked_at IS NULL AND COALESCE(name, '') = ''`
	queryKeyByID    = `SELECT ` + keyColumns + ` FROM api_keys WHERE id = ?`
	queryKeyByHash  = `SELECT key_hash, ` + keyColumns + ` FROM api_keys WHERE key_hash = ?`
	queryAuthByHash = `SELECT key_hash, ` + authColumns + ` FROM api_keys WHERE key_hash = ?`
	queryKeys       = `SELECT ` + keyColumns + ` FROM api_keys ORDER BY id`
	queryKeysOfHost = `SELECT ` + keyColumns + ` FROM api_keys WHERE hostname = ? ORDER BY id`
	queryRevokeKey  = `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING ` + keyColumns
	queryRevokeHost = `UPDATE api_keys SET revoked_at = ?1
		WHERE hostname = ?2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)
		RETURNING ` + keyColumns
	// queryRotateInsert copies the policy of key ?4 to a new key, which
	// takes the name ?5 and the maker of the key it replaces.
	queryRotateInsert = `INSERT INTO api_keys
		(key_hash, prefix, hostname, description, scopes, measurements, rate, burst, created_at, expires_at,
		name, managed_by, bucket, max_series)
		SELECT ?, ?, hostname, description, scopes, measurements, rate, burst, ?, expires_at, ?5, managed_by,
		bucket, max_series
		FROM api_keys WHERE id = ?4
		RETURNING id`
	queryRotateRetire = `UPDATE api_keys SET expires_at = ?, replaced_by = ? WHERE id = ?`
	// queryDropName takes a key's name away, for the key that replaces it.
	queryDropName = `UPDATE api_keys SET name = NULL WHERE id = ?`
	// queryQuarantine quarantines key ?3 at ?1 for the reason ?2, unless it
	// is quarantined already; queryRelease lifts a quarantine.
	queryQuarantine = `UPDATE api_keys SET quarantined_at = ?, quarantine_reason = ?
		WHERE id = ? AND quarantined_at IS NULL RETURNING ` + keyColumns
	queryRelease = `UPDATE api_keys SET quarantined_at = NULL, quarantine_reason = ''
		WHERE id = ? AND quarantined_at IS NOT NULL RETURNING ` + keyColumns
	queryInsertAudit = `INSERT INTO audit_log (at, actor, node, key_id, action, detail) VALUES (?, ?, ?, ?, ?, ?)`
)

// queryUpdateKey sets the given "column = ?" assignments on the key whose
// id is the last argument.
func queryUpdateKey(sets string) string {
	return `UPDATE api_keys SET ` + sets + ` WHERE id = ? RETURNING ` + keyColumns
}
