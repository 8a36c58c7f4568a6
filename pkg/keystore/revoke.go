package keystore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// Revoke revokes the key with the given id now. The row is kept for audit.
// Revoking a revoked key is not an error and changes nothing. It returns
// ErrNotFound for an unknown id.
func (s *Store) Revoke(ctx context.Context, id int64) (Key, error) {
	now := s.Now().UTC()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Key{}, fmt.Errorf("keystore: revoke key %d: %w", id, err)
	}
	defer tx.Rollback()
	k, err := scanKey(tx.QueryRowContext(ctx, queryRevokeKey, now.UnixNano(), id))
	if isNoRows(err) {
		// Unknown, or revoked already.
		return getKey(ctx, tx, id)
	}
	if err != nil {
		return Key{}, fmt.Errorf("keystore: revoke key %d: %w", id, err)
	}
	if err := s.audit(ctx, tx, now, id, ActionRevoke, ""); err != nil {
		return Key{}, err
	}
	if err := s.commit(ctx, tx, now, id); err != nil {
		return Key{}, fmt.Errorf("keystore: revoke key %d: %w", id, err)
	}
	return k, nil
}

// RevokeHost revokes every active key bound to hostname, the keys List
// shows for it, and returns them in id order. Like List, it looks up a
// hostname that CanonicalHostname rejects as written, so keys imported with
// such a hostname can still be revoked.
func (s *Store) RevokeHost(ctx context.Context, hostname string) ([]Key, error) {
	host, err := CanonicalHostname(hostname)
	if err != nil {
		host = hostname
	}
	now := s.Now().UTC()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("keystore: revoke host: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, queryRevokeHost, now.UnixNano(), host)
	if err != nil {
		return nil, fmt.Errorf("keystore: revoke host: %w", err)
	}
	keys, err := scanKeys(rows)
	if err != nil {
		return nil, fmt.Errorf("keystore: revoke host: %w", err)
	}
	// RETURNING gives rows in no particular order.
	slices.SortFunc(keys, func(a, b Key) int { return cmp.Compare(a.ID, b.ID) })
	var d details
	d.add("hostname", host)
	ids := make([]int64, 0, len(keys))
	for _, k := range keys {
		if err := s.audit(ctx, tx, now, k.ID, ActionRevoke, d.String()); err != nil {
			return nil, err
		}
		ids = append(ids, k.ID)
	}
	if err := s.commit(ctx, tx, now, ids...); err != nil {
		return nil, fmt.Errorf("keystore: revoke host: %w", err)
	}
	return keys, nil
}
