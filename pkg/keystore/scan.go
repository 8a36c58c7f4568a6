package keystore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// rowQuerier is a *sql.DB or a *sql.Tx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanKeys reads every row of keyColumns and closes rows.
func scanKeys(rows *sql.Rows) ([]Key, error) {
	defer rows.Close()
	keys := []Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return keys, rows.Close()
}

// scanKey reads one row of keyColumns, after any extra leading columns.
func scanKey(r scanner, extra ...any) (Key, error) {
	var (
		k                                           Key
		scopes, measurements                        string
		rate                                        sql.NullFloat64
		burst, revoked, expires, replaced, lastUsed sql.NullInt64
		created                                     int64
		lastAddr, name                              sql.NullString
		maxSeries, quarantined                      sql.NullInt64
	)
	dest := append(extra, &k.ID, &k.Prefix, &k.Hostname, &k.Description, &scopes, &measurements, &rate, &burst,
		&created, &revoked, &expires, &replaced, &name, &k.ManagedBy,
		&k.Bucket, &maxSeries, &quarantined, &k.QuarantineReason,
		&lastUsed, &lastAddr, &k.Requests, &k.Points)
	if err := r.Scan(dest...); err != nil {
		return Key{}, err
	}
	k.Scopes = splitList(scopes)
	k.Measurements = splitList(measurements)
	k.Rate = rate.Float64
	k.Burst = int(burst.Int64)
	k.CreatedAt = time.Unix(0, created).UTC()
	k.RevokedAt = fromNull(revoked)
	k.ExpiresAt = fromNull(expires)
	k.ReplacedBy = replaced.Int64
	k.LastUsedAt = fromNull(lastUsed)
	k.LastUsedAddr = lastAddr.String
	k.Name = name.String
	k.MaxSeries = int(maxSeries.Int64)
	k.QuarantinedAt = fromNull(quarantined)
	return k, nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// fromNull reads a time stored as Unix nanoseconds; NULL is the zero time.
func fromNull(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// nullTime stores t as Unix nanoseconds, and the zero time as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().UnixNano()
}

// nullFloat stores 0, the server's default, as NULL.
func nullFloat(f float64) any {
	if f == 0 {
		return nil
	}
	return f
}

// nullInt stores 0, the server's default or no key, as NULL.
func nullInt(i int64) any {
	if i == 0 {
		return nil
	}
	return i
}

// joinList stores a list comma-separated; its items hold no commas.
func joinList(l []string) string { return strings.Join(l, ",") }

// splitList reads a list joinList stored; it is never nil.
func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}
