package keystore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// HashedKey is a key to import by its hash: one another system made, or
// one exported from another store, whose clients keep their value.
type HashedKey struct {
	NewKey
	// Hash is the SHA-256 of the key's value as HashKey computes it: of
	// the canonical lower-case form of a UUID, else of the value as sent.
	Hash [sha256.Size]byte
	// Prefix is the value's first PrefixLen characters, for display, or ""
	// when they are not known; it must be lower-case hex, as a UUID's are.
	Prefix string
}

// Import stores keys by their hashes, in one transaction: all of them or,
// on any error, none. A key whose hash the store holds already, with the
// same name and hostname, is left as it is (PlanUnchanged), so importing
// a file again changes nothing; with another name or hostname, or
// revoked, it is ErrConflict. It returns one Change per key, PlanCreate
// for those it stored, with each key's Result; each is recorded in the
// audit log as imported. Errors name the key by its place in keys (from
// 1) and its name.
func (s *Store) Import(ctx context.Context, keys []HashedKey) ([]Change, error) {
	checked, err := checkImports(keys)
	if err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("keystore: import: %w", err)
	}
	defer tx.Rollback()
	changes := make([]Change, len(checked))
	var ids []int64
	for i, hk := range checked {
		c := Change{Kind: PlanUnchanged, Name: hk.Name, Want: hk.NewKey}
		if c.Key, err = heldHash(ctx, tx, hk, i); err != nil {
			return nil, err
		}
		if c.Key.ID == 0 {
			c.Kind = PlanCreate
			if c.Key, err = s.insertKey(ctx, tx, hk.NewKey, hk.Hash[:], hk.Prefix, ManagedByImport, now); err != nil {
				return nil, fmt.Errorf("key %d (%q): %w", i+1, hk.Name, err)
			}
			if err := s.audit(ctx, tx, now, c.Key.ID, ActionImport, generateDetail(c.Key)); err != nil {
				return nil, err
			}
			ids = append(ids, c.Key.ID)
		}
		c.Result = c.Key
		changes[i] = c
	}
	if err := s.commit(ctx, tx, now, ids...); err != nil {
		return nil, fmt.Errorf("keystore: import: %w", err)
	}
	return changes, nil
}

// checkImports checks each key as checkNewKey does, its name if it has
// one, and its prefix, and that no two share a hash or a name.
func checkImports(keys []HashedKey) ([]HashedKey, error) {
	out := make([]HashedKey, len(keys))
	hashes := make(map[[sha256.Size]byte]int, len(keys))
	names := make(map[string]int, len(keys))
	for i, hk := range keys {
		fail := func(err error) ([]HashedKey, error) {
			return nil, fmt.Errorf("key %d (%q): %w", i+1, hk.Name, err)
		}
		if hk.Name != "" {
			if err := CheckName(hk.Name, string(FieldName)); err != nil {
				return fail(err)
			}
			if j, dup := names[hk.Name]; dup {
				return fail(fmt.Errorf("%w: key %d is named %q too", ErrInvalidPolicy, j+1, hk.Name))
			}
			names[hk.Name] = i
		}
		if j, dup := hashes[hk.Hash]; dup {
			return fail(fmt.Errorf("%w: key %d has the same hash", ErrInvalidPolicy, j+1))
		}
		hashes[hk.Hash] = i
		if hk.Prefix != "" {
			if _, err := hex.DecodeString(hk.Prefix); err != nil || len(hk.Prefix) != PrefixLen || strings.ToLower(hk.Prefix) != hk.Prefix {
				return fail(fmt.Errorf("%w: prefix %q must be the key's first %d characters in lower-case hex, or absent",
					ErrInvalidPolicy, hk.Prefix, PrefixLen))
			}
		}
		nk, err := checkNewKey(hk.NewKey)
		if err != nil {
			return fail(err)
		}
		out[i] = HashedKey{NewKey: nk, Hash: hk.Hash, Prefix: hk.Prefix}
	}
	return out, nil
}

// heldHash returns the key whose hash is hk's if the store holds it as hk
// describes it, a zero Key if it holds no such hash, and ErrConflict if
// it holds it otherwise. i is hk's place in the import.
func heldHash(ctx context.Context, tx boundTx, hk HashedKey, i int) (Key, error) {
	var stored []byte
	k, err := scanKey(tx.QueryRowContext(ctx, queryKeyByHash, hk.Hash[:]), &stored)
	switch {
	case isNoRows(err):
		return Key{}, nil
	case err != nil:
		return Key{}, fmt.Errorf("keystore: import: %w", err)
	case k.Name != hk.Name || k.Hostname != hk.Hostname || !k.RevokedAt.IsZero():
		state := ""
		if !k.RevokedAt.IsZero() {
			state = ", revoked"
		}
		return Key{}, fmt.Errorf("%w: key %d (%q): its hash is key %d's in this store (name %q, host %s%s)",
			ErrConflict, i+1, hk.Name, k.ID, k.Name, k.Hostname, state)
	}
	return k, nil
}

// Hashes returns the SHA-256 the store keeps of each key not revoked, by
// id, so that keyctl export --with-hashes can move keys to another store
// (Import) while their clients keep their values. A hash does not reveal
// its key, but a file of them lets whoever holds it make another store
// accept the keys: it must be kept as safe as the store.
func (s *Store) Hashes(ctx context.Context) (map[int64][]byte, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, key_hash FROM api_keys WHERE revoked_at IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("keystore: read hashes: %w", err)
	}
	defer rows.Close()
	hashes := map[int64][]byte{}
	for rows.Next() {
		var (
			id   int64
			hash []byte
		)
		if err := rows.Scan(&id, &hash); err != nil {
			return nil, fmt.Errorf("keystore: read hashes: %w", err)
		}
		hashes[id] = hash
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keystore: read hashes: %w", err)
	}
	return hashes, nil
}
