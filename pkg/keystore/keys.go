package keystore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Generate makes a new random key bound to nk.Hostname and returns its record
// and its value. The value is returned only here; it cannot be read again.
// It returns ErrInvalidHostname, ErrInvalidScope or ErrInvalidPolicy for bad
// input.
func (s *Store) Generate(ctx context.Context, nk NewKey) (Key, string, error) {
	host, err := CanonicalHostname(nk.Hostname)
	if err != nil {
		return Key{}, "", err
	}
	policy, err := checkUpdate(nk.policy(), fieldName)
	if err != nil {
		return Key{}, "", err
	}
	nk = policy.NewKey(host)
	plain := uuid.NewString()
	hash := HashKey(plain)
	now := s.Now().UTC()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Key{}, "", fmt.Errorf("keystore: insert key: %w", err)
	}
	defer tx.Rollback()
	k, err := scanKey(tx.QueryRowContext(ctx, queryInsertKey,
		hash[:], plain[:PrefixLen], nk.Hostname, nk.Description, joinList(nk.Scopes), joinList(nk.Measurements),
		nullFloat(nk.Rate), nullInt(int64(nk.Burst)), now.UnixNano(), nullTime(nk.ExpiresAt),
		nk.Bucket, nullInt(int64(nk.MaxSeries))))
	if err != nil {
		return Key{}, "", fmt.Errorf("keystore: insert key: %w", err)
	}
	if err := s.audit(ctx, tx, now, k.ID, ActionGenerate, generateDetail(k)); err != nil {
		return Key{}, "", err
	}
	if err := s.commit(ctx, tx, now, k.ID); err != nil {
		return Key{}, "", fmt.Errorf("keystore: insert key: %w", err)
	}
	return k, plain, nil
}

// Filter selects keys for List.
type Filter struct {
	Hostname string // only keys bound to this hostname, if set
	All      bool   // include revoked and expired keys
	// ExpiringWithin, if set, keeps only keys that expire within it.
	ExpiringWithin time.Duration
	// UnusedSince, if set, keeps only keys not used for at least that long
	// (never-used keys count from their creation).
	UnusedSince time.Duration
	// Quarantined, if set, keeps only quarantined keys.
	Quarantined bool
}

func (f Filter) match(k Key, now time.Time) bool {
	if !f.All && k.Status(now) != StatusActive {
		return false
	}
	if f.Quarantined && !k.Quarantined() {
		return false
	}
	if f.ExpiringWithin > 0 && (k.ExpiresAt.IsZero() || k.ExpiresAt.After(now.Add(f.ExpiringWithin))) {
		return false
	}
	if f.UnusedSince > 0 {
		last := k.LastUsedAt
		if last.IsZero() {
			last = k.CreatedAt
		}
		if last.After(now.Add(-f.UnusedSince)) {
			return false
		}
	}
	return true
}

// List returns keys in id order. By default only active keys are listed. A
// hostname that CanonicalHostname rejects is looked up as written, so keys
// imported with such a hostname can still be found.
func (s *Store) List(ctx context.Context, f Filter) ([]Key, error) {
	query, args := queryKeys, []any(nil)
	if f.Hostname != "" {
		host, err := CanonicalHostname(f.Hostname)
		if err != nil {
			host = f.Hostname
		}
		query, args = queryKeysOfHost, []any{host}
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("keystore: list keys: %w", err)
	}
	all, err := scanKeys(rows)
	if err != nil {
		return nil, fmt.Errorf("keystore: list keys: %w", err)
	}
	now := s.Now()
	keys := []Key{}
	for _, k := range all {
		if f.match(k, now) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// Get returns the key with the given id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (Key, error) {
	return getKey(ctx, s.db, id)
}

// getKey reads the key with the given id through q, or returns ErrNotFound.
func getKey(ctx context.Context, q rowQuerier, id int64) (Key, error) {
	k, err := scanKey(q.QueryRowContext(ctx, queryKeyByID, id))
	if isNoRows(err) {
		return Key{}, fmt.Errorf("keystore: id %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("keystore: get key %d: %w", id, err)
	}
	return k, nil
}

// Update changes the policy of the key with the given id and returns the
// new record, recording what it changed in the audit log. It returns
// ErrNotFound, ErrInvalidScope or ErrInvalidPolicy. An Update that changes
// nothing returns the key as it is and records nothing.
func (s *Store) Update(ctx context.Context, id int64, u Update) (Key, error) {
	u, err := checkUpdate(u, fieldName)
	if err != nil {
		return Key{}, err
	}
	sets, args, detail := updateColumns(u)
	if len(sets) == 0 {
		return s.Get(ctx, id)
	}
	now := s.Now().UTC()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Key{}, fmt.Errorf("keystore: update key %d: %w", id, err)
	}
	defer tx.Rollback()
	k, err := scanKey(tx.QueryRowContext(ctx, queryUpdateKey(strings.Join(sets, ", ")), append(args, id)...))
	if isNoRows(err) {
		return Key{}, fmt.Errorf("keystore: id %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("keystore: update key %d: %w", id, err)
	}
	if err := s.audit(ctx, tx, now, id, ActionUpdate, detail.String()); err != nil {
		return Key{}, err
	}
	if err := s.commit(ctx, tx, now, id); err != nil {
		return Key{}, fmt.Errorf("keystore: update key %d: %w", id, err)
	}
	return k, nil
}

// String describes the change u as the audit log records it: the columns
// it sets, as name=value pairs in a fixed order, such as
// "expires_at=never scopes=submit,admin rate=default".
func (u Update) String() string {
	_, _, detail := updateColumns(u)
	return detail.String()
}

// updateColumns returns the "column = ?" assignments that make the checked
// change u, their arguments, and the change as the audit log records it.
func updateColumns(u Update) (sets []string, args []any, detail details) {
	set := func(column string, value any, shown string) {
		sets, args = append(sets, column+" = ?"), append(args, value)
		detail.add(column, shown)
	}
	if u.ExpiresAt != nil {
		set("expires_at", nullTime(*u.ExpiresAt), expiryDetail(*u.ExpiresAt))
	}
	if u.Scopes != nil {
		set("scopes", joinList(*u.Scopes), joinList(*u.Scopes))
	}
	if u.Measurements != nil {
		set("measurements", joinList(*u.Measurements), measurementsDetail(*u.Measurements))
	}
	if u.Rate != nil {
		set("rate", nullFloat(*u.Rate), rateDetail(*u.Rate))
	}
	if u.Burst != nil {
		set("burst", nullInt(int64(*u.Burst)), burstDetail(*u.Burst))
	}
	if u.Description != nil {
		set("description", *u.Description, *u.Description)
	}
	if u.Bucket != nil {
		set("bucket", *u.Bucket, bucketDetail(*u.Bucket))
	}
	if u.MaxSeries != nil {
		set("max_series", nullInt(int64(*u.MaxSeries)), maxSeriesDetail(*u.MaxSeries))
	}
	return sets, args, detail
}

// Rotate makes a new key for the same host with the same policy as the key
// with the given id, and lets the old key work until grace has passed (at
// once when grace is 0). It returns the new key, its value, and the old
// key's updated record. It returns ErrNotFound, ErrRevoked or ErrExpired
// for a key that is no longer active, or ErrInvalidPolicy for a grace
// CheckGrace refuses. The audit log gets a rotate entry for
// the old key and a generate entry for the new one.
func (s *Store) Rotate(ctx context.Context, id int64, grace time.Duration) (newKey Key, plain string, old Key, err error) {
	if err := CheckGrace(grace, "grace"); err != nil {
		return Key{}, "", Key{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Key{}, "", Key{}, fmt.Errorf("keystore: rotate key %d: %w", id, err)
	}
	defer tx.Rollback()
	if old, err = getKey(ctx, tx, id); err != nil {
		return Key{}, "", Key{}, err
	}
	now := s.Now().UTC()
	switch old.Status(now) {
	case StatusRevoked:
		return Key{}, "", Key{}, fmt.Errorf("keystore: rotate key %d: %w", id, ErrRevoked)
	case StatusExpired:
		return Key{}, "", Key{}, fmt.Errorf("keystore: rotate key %d: %w", id, ErrExpired)
	}
	plain = uuid.NewString()
	hash := HashKey(plain)
	var newID int64
	if err = tx.QueryRowContext(ctx, queryRotateInsert, hash[:], plain[:PrefixLen], now.UnixNano(), id).Scan(&newID); err != nil {
		return Key{}, "", Key{}, fmt.Errorf("keystore: rotate key %d: %w", id, err)
	}
	end := now.Add(grace)
	if !old.ExpiresAt.IsZero() && old.ExpiresAt.Before(end) {
		end = old.ExpiresAt
	}
	if _, err := tx.ExecContext(ctx, queryRotateRetire, end.UnixNano(), newID, id); err != nil {
		return Key{}, "", Key{}, fmt.Errorf("keystore: rotate key %d: %w", id, err)
	}
	if err := s.audit(ctx, tx, now, id, ActionRotate, fmt.Sprintf("replaced_by=%d grace=%s", newID, grace)); err != nil {
		return Key{}, "", Key{}, err
	}
	if err := s.audit(ctx, tx, now, newID, ActionGenerate, fmt.Sprintf("rotated from %d", id)); err != nil {
		return Key{}, "", Key{}, err
	}
	if newKey, err = getKey(ctx, tx, newID); err != nil {
		return Key{}, "", Key{}, err
	}
	if old, err = getKey(ctx, tx, id); err != nil {
		return Key{}, "", Key{}, err
	}
	if err := s.commit(ctx, tx, now, id, newID); err != nil {
		return Key{}, "", Key{}, fmt.Errorf("keystore: rotate key %d: %w", id, err)
	}
	return newKey, plain, old, nil
}
