package keystore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrConflict means Copy found a key in both stores that is not the same
// key: the same id with another hash, or the same hash under another id.
var ErrConflict = errors.New("conflicting key")

// CopyReport says what Copy did.
type CopyReport struct {
	Keys    int // keys copied
	Skipped int // keys the destination held already, with the same hash
	Usage   int // usage rows (one per key and node) copied
	Audit   int // audit entries copied
}

// Copy copies every key of src that dst lacks into dst, with its id, hash,
// prefix, host binding, scopes, measurements, limits, expiry, revocation
// and rotation, its usage per node, and its audit entries, in one
// transaction on dst; src is read in one transaction too, so what is copied
// is one moment of it. Keys dst already holds with the same hash are
// skipped, with their usage and audit, so copying again does nothing. A
// key dst holds with another hash, or under another id, is ErrConflict,
// naming it, and nothing is written. Before it commits, Copy checks that
// dst gained exactly what it copied.
//
// The copied keys are logged as changes (on SQLite by the key table's
// triggers), so running gateways learn of them; on PostgreSQL the identity
// sequence is moved past the copied ids.
func Copy(ctx context.Context, src, dst *Store) (CopyReport, error) {
	var r CopyReport
	if src.Addr() == dst.Addr() {
		return r, fmt.Errorf("keystore: copy %s to itself", src.Addr())
	}
	opts := &sql.TxOptions{}
	if src.dialect.changes {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	from, err := src.db.BeginTx(ctx, opts)
	if err != nil {
		return r, fmt.Errorf("keystore: read %s: %w", src.Addr(), err)
	}
	defer from.Rollback()
	to, err := dst.db.BeginTx(ctx, nil)
	if err != nil {
		return r, fmt.Errorf("keystore: write %s: %w", dst.Addr(), err)
	}
	defer to.Rollback()
	c := &copier{src: src, dst: dst, from: from, to: to, copied: map[int64]bool{}}
	before, err := c.counts(ctx)
	if err != nil {
		return r, err
	}
	if r, err = c.run(ctx); err != nil {
		return CopyReport{}, err
	}
	after, err := c.counts(ctx)
	if err != nil {
		return CopyReport{}, err
	}
	if want := (tableCounts{before.keys + r.Keys, before.usage + r.Usage, before.audit + r.Audit}); after != want {
		return CopyReport{}, fmt.Errorf("keystore: copy to %s: it holds %d keys, %d usage rows and %d audit entries, want %d, %d and %d; nothing was copied",
			dst.Addr(), after.keys, after.usage, after.audit, want.keys, want.usage, want.audit)
	}
	if err := dst.commit(ctx, to, dst.Now(), c.ids...); err != nil {
		return CopyReport{}, fmt.Errorf("keystore: copy to %s: %w", dst.Addr(), err)
	}
	return r, nil
}

// copier holds a Copy's transactions and the keys it has copied.
type copier struct {
	src, dst *Store
	from, to boundTx
	copied   map[int64]bool
	ids      []int64 // copied, in order
}

// tableCounts are the rows of the tables Copy writes.
type tableCounts struct{ keys, usage, audit int }

// counts reads the destination's tableCounts.
func (c *copier) counts(ctx context.Context) (tableCounts, error) {
	var n tableCounts
	err := c.to.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM api_keys), (SELECT count(*) FROM key_usage),
		(SELECT count(*) FROM audit_log)`).Scan(&n.keys, &n.usage, &n.audit)
	if err != nil {
		return n, fmt.Errorf("keystore: count rows of %s: %w", c.dst.Addr(), err)
	}
	return n, nil
}

// run copies the keys, then their usage and audit entries.
func (c *copier) run(ctx context.Context) (CopyReport, error) {
	var r CopyReport
	var err error
	if r.Keys, r.Skipped, err = c.keys(ctx); err != nil {
		return r, err
	}
	if r.Usage, err = c.usage(ctx); err != nil {
		return r, err
	}
	if r.Audit, err = c.audit(ctx); err != nil {
		return r, err
	}
	if c.dst.dialect.changes {
		// Explicit ids leave the identity sequence behind them.
		if _, err := c.to.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('api_keys', 'id'),
			GREATEST((SELECT max(id) FROM api_keys), 1))`); err != nil {
			return r, fmt.Errorf("keystore: copy to %s: %w", c.dst.Addr(), err)
		}
	}
	return r, nil
}

// rawKey is a key's row as both schemas hold it, without its usage.
type rawKey struct {
	id, created                       int64
	hash                              []byte
	prefix, hostname, description     string
	scopes, measurements              string
	rate                              sql.NullFloat64
	burst, revoked, expires, replaced sql.NullInt64
	name                              sql.NullString
	managedBy                         string
	bucket, quarantineReason          string
	maxSeries, quarantined            sql.NullInt64
}

const (
	queryRawKeys = `SELECT id, key_hash, prefix, hostname, description, scopes, measurements, rate, burst,
		created_at, revoked_at, expires_at, replaced_by,
		name, managed_by, bucket, max_series, quarantined_at, quarantine_reason FROM api_keys ORDER BY id`
	queryCopyKey = `INSERT INTO api_keys (id, key_hash, prefix, hostname, description, scopes, measurements, rate, burst,
		created_at, revoked_at, expires_at,
		name, managed_by, bucket, max_series, quarantined_at, quarantine_reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
)

// keys copies the keys dst lacks, and sets replaced_by once every key is
// there, since it may name a later key.
func (c *copier) keys(ctx context.Context) (copied, skipped int, err error) {
	rows, err := c.from.QueryContext(ctx, queryRawKeys)
	if err != nil {
		return 0, 0, fmt.Errorf("keystore: read keys of %s: %w", c.src.Addr(), err)
	}
	defer rows.Close()
	insert, err := c.to.PrepareContext(ctx, queryCopyKey)
	if err != nil {
		return 0, 0, err
	}
	defer insert.Close()
	var replaced []rawKey
	for rows.Next() {
		var k rawKey
		if err := rows.Scan(&k.id, &k.hash, &k.prefix, &k.hostname, &k.description, &k.scopes, &k.measurements,
			&k.rate, &k.burst, &k.created, &k.revoked, &k.expires, &k.replaced,
			&k.name, &k.managedBy, &k.bucket, &k.maxSeries, &k.quarantined, &k.quarantineReason); err != nil {
			return 0, 0, fmt.Errorf("keystore: read keys of %s: %w", c.src.Addr(), err)
		}
		res, err := insert.ExecContext(ctx, k.id, k.hash, k.prefix, k.hostname, k.description, k.scopes,
			k.measurements, k.rate, k.burst, k.created, k.revoked, k.expires,
			k.name, k.managedBy, k.bucket, k.maxSeries, k.quarantined, k.quarantineReason)
		if err != nil {
			return 0, 0, fmt.Errorf("keystore: copy key %d to %s: %w", k.id, c.dst.Addr(), err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if err := c.sameKey(ctx, k); err != nil {
				return 0, 0, err
			}
			skipped++
			continue
		}
		c.copied[k.id] = true
		c.ids = append(c.ids, k.id)
		if k.replaced.Valid {
			replaced = append(replaced, k)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("keystore: read keys of %s: %w", c.src.Addr(), err)
	}
	for _, k := range replaced {
		if _, err := c.to.ExecContext(ctx, `UPDATE api_keys SET replaced_by = ? WHERE id = ?`, k.replaced, k.id); err != nil {
			return 0, 0, fmt.Errorf("keystore: copy key %d to %s: %w", k.id, c.dst.Addr(), err)
		}
	}
	return len(c.ids), skipped, nil
}

// sameKey returns nil if dst holds k already, and ErrConflict, naming the
// key, if it holds another key with k's id or k's hash.
func (c *copier) sameKey(ctx context.Context, k rawKey) error {
	var hash []byte
	err := c.to.QueryRowContext(ctx, `SELECT key_hash FROM api_keys WHERE id = ?`, k.id).Scan(&hash)
	switch {
	case err == nil && bytes.Equal(hash, k.hash):
		return nil
	case err == nil:
		return fmt.Errorf("%w: key %d (%s…) of %s has another hash in %s; nothing was copied",
			ErrConflict, k.id, k.prefix, c.src.Addr(), c.dst.Addr())
	case !isNoRows(err):
		return fmt.Errorf("keystore: read key %d of %s: %w", k.id, c.dst.Addr(), err)
	}
	var other int64
	err = c.to.QueryRowContext(ctx, `SELECT id FROM api_keys WHERE key_hash = ?`, k.hash).Scan(&other)
	if isNoRows(err) && k.name.Valid {
		// Nor its hash: a key not revoked there has its name.
		err = c.to.QueryRowContext(ctx, `SELECT id FROM api_keys WHERE name = ? AND revoked_at IS NULL`, k.name).Scan(&other)
		if err == nil {
			return fmt.Errorf("%w: key %d (%s…) of %s is named %q, as key %d in %s is; nothing was copied",
				ErrConflict, k.id, k.prefix, c.src.Addr(), k.name.String, other, c.dst.Addr())
		}
	}
	if err != nil {
		return fmt.Errorf("keystore: copy key %d to %s: %w", k.id, c.dst.Addr(), err)
	}
	return fmt.Errorf("%w: key %d (%s…) of %s is key %d in %s; nothing was copied",
		ErrConflict, k.id, k.prefix, c.src.Addr(), other, c.dst.Addr())
}

// usage copies the usage rows of the keys copied.
func (c *copier) usage(ctx context.Context) (int, error) {
	return c.copyRows(ctx, "usage",
		`SELECT key_id, node, last_used_at, last_used_addr, requests, points FROM key_usage ORDER BY key_id, node`,
		`INSERT INTO key_usage (key_id, node, last_used_at, last_used_addr, requests, points) VALUES (?, ?, ?, ?, ?, ?)`,
		func() []any {
			var (
				key, requests, points int64
				node                  string
				at                    sql.NullInt64
				addr                  sql.NullString
			)
			return []any{&key, &node, &at, &addr, &requests, &points}
		})
}

// audit copies the audit entries of the keys copied, in their order; they
// get new ids in dst.
func (c *copier) audit(ctx context.Context) (int, error) {
	return c.copyRows(ctx, "audit entries",
		`SELECT key_id, at, actor, node, action, detail FROM audit_log WHERE key_id IS NOT NULL ORDER BY id`,
		`INSERT INTO audit_log (key_id, at, actor, node, action, detail) VALUES (?, ?, ?, ?, ?, ?)`,
		func() []any {
			var (
				key, at                     int64
				actor, node, action, detail string
			)
			return []any{&key, &at, &actor, &node, &action, &detail}
		})
}

// copyRows copies the rows query reads from src, whose first column is a
// key id, to dst with insert, for the keys copied. dest returns fresh
// variables to scan a row into.
func (c *copier) copyRows(ctx context.Context, what, query, insert string, dest func() []any) (int, error) {
	rows, err := c.from.QueryContext(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("keystore: read %s of %s: %w", what, c.src.Addr(), err)
	}
	defer rows.Close()
	stmt, err := c.to.PrepareContext(ctx, insert)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	n := 0
	for rows.Next() {
		vars := dest()
		if err := rows.Scan(vars...); err != nil {
			return 0, fmt.Errorf("keystore: read %s of %s: %w", what, c.src.Addr(), err)
		}
		if !c.copied[*vars[0].(*int64)] {
			continue
		}
		if _, err := stmt.ExecContext(ctx, vars...); err != nil {
			return 0, fmt.Errorf("keystore: copy %s to %s: %w", what, c.dst.Addr(), err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("keystore: read %s of %s: %w", what, c.src.Addr(), err)
	}
	return n, nil
}
