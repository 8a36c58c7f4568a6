package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// A key's name is how a file, a pipeline or an Ansible play knows it, such
// as "web-1-telegraf": unlike an id it is chosen, so the same definition
// finds the same key in every store. Names are unique among the keys not
// revoked; a revoked key keeps its name in its record, and a new key may
// take it.

// MaxNameLen is the longest name a key may have, in bytes.
const MaxNameLen = 63

// ErrNameTaken means a key not revoked has the name asked for already.
var ErrNameTaken = errors.New("key name taken")

// CheckName returns ErrInvalidPolicy, naming field as the caller's users
// know it, unless name can name a key: 1 to MaxNameLen lower-case letters,
// digits, '-', '_' and '.', starting with a letter or digit, neither all
// digits (it would read as an id) nor a UUID (it would read as a key), so
// that keyctl and the admin API can take a name wherever an id is taken,
// and a URL path can hold it as it is.
func CheckName(name, field string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: %s must not be empty", ErrInvalidPolicy, field)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %s %q is %d bytes, longer than %d", ErrInvalidPolicy, field, name, len(name), MaxNameLen)
	case !isNameStart(name[0]) || strings.IndexFunc(name, func(r rune) bool { return !isNameChar(r) }) >= 0:
		return fmt.Errorf("%w: %s %q must be lower-case letters, digits, '-', '_' or '.', starting with a letter or digit",
			ErrInvalidPolicy, field, name)
	case strings.Trim(name, "0123456789") == "":
		return fmt.Errorf("%w: %s %q must not be all digits, which reads as a key id", ErrInvalidPolicy, field, name)
	}
	if _, err := uuid.Parse(name); err == nil {
		return fmt.Errorf("%w: %s %q must not be a UUID, which reads as a key", ErrInvalidPolicy, field, name)
	}
	return nil
}

func isNameStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isNameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

// GetByName returns the key named name: the one not revoked, or if every
// key of that name is revoked the latest of them, or ErrNotFound.
func (s *Store) GetByName(ctx context.Context, name string) (Key, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, queryKeyByName, name))
	if isNoRows(err) {
		return Key{}, fmt.Errorf("keystore: name %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("keystore: get key %q: %w", name, err)
	}
	return k, nil
}

// nameTaken returns ErrNameTaken naming the key that holds name, read
// outside the transaction that failed to take it.
func (s *Store) nameTaken(ctx context.Context, name string) error {
	var id int64
	if err := s.db.QueryRowContext(ctx, `SELECT id FROM api_keys WHERE name = ? AND revoked_at IS NULL`, name).Scan(&id); err != nil {
		return fmt.Errorf("keystore: %w: %q", ErrNameTaken, name)
	}
	return fmt.Errorf("keystore: %w: key %d is named %q", ErrNameTaken, id, name)
}

// uniqueViolation reports whether err is a statement's breach of the
// unique index on column of api_keys ("name" or "key_hash"), on either
// backend.
func uniqueViolation(err error, column string) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" && strings.Contains(pgErr.ConstraintName, "api_keys_"+column)
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed: api_keys."+column)
}

// nullString stores "" as NULL, so that keys without a name do not share
// one.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
