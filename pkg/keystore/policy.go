package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ErrInvalidPolicy means an update or new key asks for something impossible,
// such as a negative rate or an expiry in the past.
var ErrInvalidPolicy = errors.New("invalid key policy")

// Update describes changes to a key's policy. Nil fields are left alone.
type Update struct {
	Description  *string
	ExpiresAt    *time.Time // a zero time removes the expiry
	Scopes       *[]string
	Measurements *[]string // an empty list allows every measurement
	Rate         *float64  // 0 means the server's default
	Burst        *int      // 0 means the server's default
}

// Update changes the policy of the key with the given id and returns the
// new record, recording what it changed in the audit log. It returns
// ErrNotFound, ErrInvalidScope or ErrInvalidPolicy. An Update that changes
// nothing returns the key as it is and records nothing.
func (s *Store) Update(ctx context.Context, id int64, u Update) (Key, error) {
	var (
		sets   []string
		args   []any
		detail details
	)
	set := func(column string, value any, shown string) {
		sets, args = append(sets, column+" = ?"), append(args, value)
		detail.add(column, shown)
	}
	if u.ExpiresAt != nil {
		set("expires_at", nullTime(*u.ExpiresAt), expiryDetail(*u.ExpiresAt))
	}
	if u.Scopes != nil {
		scopes, err := normalizeScopes(*u.Scopes)
		if err != nil {
			return Key{}, err
		}
		set("scopes", joinList(scopes), joinList(scopes))
	}
	if u.Measurements != nil {
		if err := checkMeasurements(*u.Measurements); err != nil {
			return Key{}, err
		}
		set("measurements", joinList(*u.Measurements), measurementsDetail(*u.Measurements))
	}
	if u.Rate != nil {
		if err := checkRate(*u.Rate); err != nil {
			return Key{}, err
		}
		set("rate", nullFloat(*u.Rate), rateDetail(*u.Rate))
	}
	if u.Burst != nil {
		if err := checkBurst(*u.Burst); err != nil {
			return Key{}, err
		}
		set("burst", nullInt(int64(*u.Burst)), burstDetail(*u.Burst))
	}
	if u.Description != nil {
		if err := CheckDescription(*u.Description); err != nil {
			return Key{}, err
		}
		set("description", *u.Description, *u.Description)
	}
	if len(sets) == 0 {
		return s.Get(ctx, id)
	}
	now := s.Now().UTC()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Key{}, fmt.Errorf("keystore: update key %d: %w", id, err)
	}
	defer tx.Rollback()
	k, err := scanKey(tx.QueryRowContext(ctx,
		`UPDATE api_keys SET `+strings.Join(sets, ", ")+` WHERE id = ? RETURNING `+keyColumns, append(args, id)...))
	if isNoRows(err) {
		return Key{}, fmt.Errorf("keystore: id %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("keystore: update key %d: %w", id, err)
	}
	if err := s.audit(ctx, tx, now, id, ActionUpdate, detail.String()); err != nil {
		return Key{}, err
	}
	if err := tx.Commit(); err != nil {
		return Key{}, fmt.Errorf("keystore: update key %d: %w", id, err)
	}
	return k, nil
}

// Rotate makes a new key for the same host with the same policy as the key
// with the given id, and lets the old key work until grace has passed (at
// once when grace is 0). It returns the new key, its value, and the old
// key's updated record. It returns ErrNotFound, or ErrRevoked or ErrExpired
// for a key that is no longer active. The audit log gets a rotate entry for
// the old key and a generate entry for the new one.
func (s *Store) Rotate(ctx context.Context, id int64, grace time.Duration) (newKey Key, plain string, old Key, err error) {
	if grace < 0 {
		return Key{}, "", Key{}, fmt.Errorf("%w: grace must not be negative", ErrInvalidPolicy)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Key{}, "", Key{}, fmt.Errorf("keystore: rotate key %d: %w", id, err)
	}
	defer tx.Rollback()
	old, err = scanKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
	if err != nil {
		if isNoRows(err) {
			return Key{}, "", Key{}, fmt.Errorf("keystore: id %d: %w", id, ErrNotFound)
		}
		return Key{}, "", Key{}, fmt.Errorf("keystore: rotate key %d: %w", id, err)
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
	err = tx.QueryRowContext(ctx, `INSERT INTO api_keys
		(key_hash, prefix, hostname, description, scopes, measurements, rate, burst, created_at, expires_at)
		SELECT ?, ?, hostname, description, scopes, measurements, rate, burst, ?, expires_at FROM api_keys WHERE id = ?
		RETURNING id`, hash[:], plain[:PrefixLen], now.UnixNano(), id).Scan(&newID)
	if err != nil {
		return Key{}, "", Key{}, fmt.Errorf("keystore: rotate key %d: %w", id, err)
	}
	end := now.Add(grace)
	if !old.ExpiresAt.IsZero() && old.ExpiresAt.Before(end) {
		end = old.ExpiresAt
	}
	if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET expires_at = ?, replaced_by = ? WHERE id = ?`,
		end.UnixNano(), newID, id); err != nil {
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
	if err := tx.Commit(); err != nil {
		return Key{}, "", Key{}, fmt.Errorf("keystore: rotate key %d: %w", id, err)
	}
	return newKey, plain, old, nil
}

// Usage is what a server saw of one key since its last report.
type Usage struct {
	LastUsedAt   time.Time
	LastUsedAddr string
	Requests     int64
	Points       int64
}

// RecordUsage adds a batch of usage reports, keyed by key id, in one
// transaction, so a busy server costs the database one write per flush
// rather than one per request.
func (s *Store) RecordUsage(ctx context.Context, usage map[int64]Usage) error {
	if len(usage) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("keystore: record usage: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `UPDATE api_keys SET
		last_used_at = MAX(COALESCE(last_used_at, 0), ?),
		last_used_addr = CASE WHEN ? >= COALESCE(last_used_at, 0) THEN ? ELSE last_used_addr END,
		request_count = request_count + ?, point_count = point_count + ? WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("keystore: record usage: %w", err)
	}
	defer stmt.Close()
	for id, u := range usage {
		at := u.LastUsedAt.UTC().UnixNano()
		if _, err := stmt.ExecContext(ctx, at, at, u.LastUsedAddr, u.Requests, u.Points, id); err != nil {
			return fmt.Errorf("keystore: record usage of key %d: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("keystore: record usage: %w", err)
	}
	return nil
}

// checkMeasurements rejects measurement names a key cannot be limited to:
// the list is stored comma-separated.
func checkMeasurements(ms []string) error {
	for _, m := range ms {
		if m == "" || strings.Contains(m, ",") {
			return fmt.Errorf("%w: measurement %q must be non-empty and contain no comma", ErrInvalidPolicy, m)
		}
	}
	return nil
}
