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
// input, and ErrNameTaken when a key not revoked has nk.Name.
func (s *Store) Generate(ctx context.Context, nk NewKey) (Key, string, error) {
	keys, plains, err := s.GenerateMany(ctx, []NewKey{nk})
	if err != nil {
		return Key{}, "", err
	}
	return keys[0], plains[0], nil
}

// GenerateMany makes a key for each of nks, as Generate does, in one
// transaction: all of them or, on any error, none. It returns the records
// and values in the order of nks. An error about one of them names it by
// its place in nks (from 1) and its hostname; two of nks with the same name
// are ErrNameTaken.
func (s *Store) GenerateMany(ctx context.Context, nks []NewKey) ([]Key, []string, error) {
	checked := make([]NewKey, len(nks))
	names := map[string]int{}
	for i, nk := range nks {
		var err error
		if checked[i], err = checkNewKey(nk); err != nil {
			return nil, nil, manyError(len(nks), i, nk, err)
		}
		if n := checked[i].Name; n != "" {
			if j, dup := names[n]; dup {
				return nil, nil, manyError(len(nks), i, nk, fmt.Errorf("%w: key %d of %d is named %q too", ErrNameTaken, j+1, len(nks), n))
			}
			names[n] = i
		}
	}
	now := s.Now().UTC()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("keystore: insert key: %w", err)
	}
	defer tx.Rollback()
	keys, plains, ids := make([]Key, len(nks)), make([]string, len(nks)), make([]int64, len(nks))
	for i, nk := range checked {
		plains[i] = uuid.NewString()
		hash := HashKey(plains[i])
		if keys[i], err = s.insertKey(ctx, tx, nk, hash[:], plains[i][:PrefixLen], "", now); err != nil {
			return nil, nil, manyError(len(nks), i, nk, err)
		}
		if err := s.audit(ctx, tx, now, keys[i].ID, ActionGenerate, generateDetail(keys[i])); err != nil {
			return nil, nil, err
		}
		ids[i] = keys[i].ID
	}
	if err := s.commit(ctx, tx, now, ids...); err != nil {
		return nil, nil, fmt.Errorf("keystore: insert key: %w", err)
	}
	return keys, plains, nil
}

// manyError names the key of nks at i in err, when there are several.
func manyError(n, i int, nk NewKey, err error) error {
	if n == 1 {
		return err
	}
	return fmt.Errorf("key %d of %d (hostname %q): %w", i+1, n, nk.Hostname, err)
}

// checkNewKey checks nk's hostname, name and policy and returns the key
// as the store keeps it: hostname canonical, scopes normalized (submit for
// none), measurement names trimmed.
func checkNewKey(nk NewKey) (NewKey, error) {
	host, err := CanonicalHostname(nk.Hostname)
	if err != nil {
		return NewKey{}, err
	}
	policy, err := checkUpdate(nk.policy(), fieldName)
	if err != nil {
		return NewKey{}, err
	}
	return policy.NewKey(host), nil
}

// insertKey inserts nk, checked, with the given hash and display prefix,
// made by managedBy, in tx, and returns its record. A name a key not
// revoked has already is ErrNameTaken, naming that key.
func (s *Store) insertKey(ctx context.Context, tx boundTx, nk NewKey, hash []byte, prefix, managedBy string, now time.Time) (Key, error) {
	k, err := scanKey(tx.QueryRowContext(ctx, queryInsertKey,
		hash, prefix, nk.Hostname, nk.Description, joinList(nk.Scopes), joinList(nk.Measurements),
		nullFloat(nk.Rate), nullInt(int64(nk.Burst)), now.UnixNano(), nullTime(nk.ExpiresAt),
		nullString(nk.Name), managedBy, nk.Bucket, nullInt(int64(nk.MaxSeries))))
	if uniqueViolation(err, "name") {
		return Key{}, s.nameTaken(ctx, nk.Name)
	}
	if err != nil {
		return Key{}, fmt.Errorf("keystore: insert key: %w", err)
	}
	return k, nil
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
// nothing returns the key as it is and records nothing. A name that
// another key not revoked has is ErrNameTaken.
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
	if uniqueViolation(err, "name") {
		return Key{}, s.nameTaken(ctx, *u.Name)
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
	if u.Name != nil {
		set("name", nullString(*u.Name), *u.Name)
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
// the old key and a generate entry for the new one. The new key takes the
// old one's name and maker.
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
	if old.Name != "" {
		// The name moves to the new key: it names the credential, not
		// one value of it.
		if _, err := tx.ExecContext(ctx, queryDropName, id); err != nil {
			return Key{}, "", Key{}, fmt.Errorf("keystore: rotate key %d: %w", id, err)
		}
	}
	var newID int64
	if err = tx.QueryRowContext(ctx, queryRotateInsert, hash[:], plain[:PrefixLen], now.UnixNano(), id, nullString(old.Name)).Scan(&newID); err != nil {
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
