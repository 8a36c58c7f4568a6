// Package keystore is metricgate's store of API keys: UUID keys bound to the
// host that may use them, kept in a SQLite file that keyctl and a running
// apiserver share.
//
// A key's plaintext is shown once, when it is made, and never stored: the
// database keeps its SHA-256 and an 8-character display prefix, so a copied
// database file reveals no key. Look-up is by hash through a unique index, so
// the cost of checking a key does not grow with the number of keys.
package keystore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// Errors returned by the Store. Callers check them with errors.Is.
var (
	// ErrUnknownKey means no key with that value exists (or the value is not
	// a key at all).
	ErrUnknownKey = errors.New("unknown key")
	// ErrRevoked means the key exists but was revoked.
	ErrRevoked = errors.New("key revoked")
	// ErrExpired means the key exists but its expiry time has passed.
	ErrExpired = errors.New("key expired")
	// ErrHostMismatch means the key is valid but the caller's address is not
	// the host the key is bound to.
	ErrHostMismatch = errors.New("caller address does not match the key's host")
	// ErrNotFound means no key has the requested id.
	ErrNotFound = errors.New("key not found")
	// ErrInvalidHostname means a hostname is neither an IP address, a CIDR
	// range nor a valid DNS name.
	ErrInvalidHostname = errors.New("invalid hostname")
	// ErrInvalidScope means a scope is not one the gateway knows.
	ErrInvalidScope = errors.New("invalid scope")
)

// Scopes a key may carry.
const (
	// ScopeSubmit allows writing metrics.
	ScopeSubmit = "submit"
	// ScopeAdmin allows managing keys over HTTP.
	ScopeAdmin = "admin"
)

// PrefixLen is the number of leading characters of a key kept for display.
const PrefixLen = 8

// MaxDescriptionLen is the longest description a key may have, in bytes.
const MaxDescriptionLen = 256

// Status is the state of a key at a given time.
type Status string

// The states a key can be in.
const (
	StatusActive  Status = "active"
	StatusRevoked Status = "revoked"
	StatusExpired Status = "expired"
)

// Key is a stored API key: everything about it except its value, which the
// store never holds.
type Key struct {
	ID           int64
	Prefix       string
	Hostname     string
	Description  string
	Scopes       []string
	Measurements []string // empty means any measurement
	Rate         float64  // points per second; 0 means the server's default
	Burst        int      // points; 0 means the server's default
	CreatedAt    time.Time
	RevokedAt    time.Time // zero unless revoked
	ExpiresAt    time.Time // zero when the key never expires
	ReplacedBy   int64     // id of the key that replaced it on rotation, or 0
	LastUsedAt   time.Time // zero when never used
	LastUsedAddr string
	Requests     int64
	Points       int64
}

// Status reports whether the key is active, revoked or expired at now.
// Revocation wins over expiry.
func (k Key) Status(now time.Time) Status {
	switch {
	case !k.RevokedAt.IsZero() && !now.Before(k.RevokedAt):
		return StatusRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return StatusExpired
	}
	return StatusActive
}

// HasScope reports whether the key carries scope s.
func (k Key) HasScope(s string) bool {
	for _, have := range k.Scopes {
		if have == s {
			return true
		}
	}
	return false
}

// Store is a key store backed by one SQLite file. It is safe for concurrent
// use, and several processes may open the same file at once.
//
// Every change to a key is recorded in an audit log (see Audit) in the same
// transaction as the change; recording usage is not.
type Store struct {
	db       *sql.DB
	resolver *resolver

	// Now returns the current time. Tests replace it to cross expiry times
	// without waiting.
	Now func() time.Time
	// Actor names who is making changes, for the audit log, such as
	// "keyctl:alice@admin-1". Open sets it to "unknown".
	Actor string
}

// Open opens the key store at path, creating it (readable by its owner only)
// if it does not exist, and brings its schema up to date. A database made by
// the original setup, with plaintext keys, is upgraded in place: ids and
// hostnames are kept, every key keeps working, and no plaintext remains in
// the file afterwards.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("keystore: empty database path")
	}
	// Create the file ourselves so it is 0600: SQLite would use the umask,
	// and its -wal and -shm files copy the main file's permissions.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("keystore: create %s: %w", path, err)
	}
	// WAL lets readers (the apiserver) run beside a writer (keyctl); the busy
	// timeout makes a writer wait for another instead of failing with
	// "database is locked"; BEGIN IMMEDIATE takes the write lock at the start
	// of a transaction, so two writers never deadlock upgrading read locks.
	// secure_delete overwrites freed content, which the upgrade relies on.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_pragma=synchronous(normal)" +
		"&_pragma=foreign_keys(1)&_pragma=secure_delete(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("keystore: open %s: %w", path, err)
	}
	s := &Store{db: db, resolver: newResolver(), Now: time.Now, Actor: unknownActor}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("keystore: %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// NewKey describes a key to generate.
type NewKey struct {
	Hostname     string
	Description  string
	Scopes       []string // defaults to [submit]
	Measurements []string
	Rate         float64
	Burst        int
	ExpiresAt    time.Time // zero for no expiry
}

// Generate makes a new random key bound to nk.Hostname and returns its record
// and its value. The value is returned only here; it cannot be read again.
// It returns ErrInvalidHostname, ErrInvalidScope or ErrInvalidPolicy for bad
// input.
func (s *Store) Generate(ctx context.Context, nk NewKey) (Key, string, error) {
	host, err := CanonicalHostname(nk.Hostname)
	if err != nil {
		return Key{}, "", err
	}
	if err := CheckDescription(nk.Description); err != nil {
		return Key{}, "", err
	}
	scopes, err := normalizeScopes(nk.Scopes)
	if err != nil {
		return Key{}, "", err
	}
	if err := checkMeasurements(nk.Measurements); err != nil {
		return Key{}, "", err
	}
	if err := checkRate(nk.Rate); err != nil {
		return Key{}, "", err
	}
	if err := checkBurst(nk.Burst); err != nil {
		return Key{}, "", err
	}
	plain := uuid.NewString()
	hash := HashKey(plain)
	now := s.Now().UTC()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Key{}, "", fmt.Errorf("keystore: insert key: %w", err)
	}
	defer tx.Rollback()
	k, err := scanKey(tx.QueryRowContext(ctx, `INSERT INTO api_keys
		(key_hash, prefix, hostname, description, scopes, measurements, rate, burst, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+keyColumns,
		hash[:], plain[:PrefixLen], host, nk.Description, joinList(scopes), joinList(nk.Measurements),
		nullFloat(nk.Rate), nullInt(int64(nk.Burst)), now.UnixNano(), nullTime(nk.ExpiresAt)))
	if err != nil {
		return Key{}, "", fmt.Errorf("keystore: insert key: %w", err)
	}
	if err := s.audit(ctx, tx, now, k.ID, ActionGenerate, generateDetail(k)); err != nil {
		return Key{}, "", err
	}
	if err := tx.Commit(); err != nil {
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
}

func (f Filter) match(k Key, now time.Time) bool {
	if !f.All && k.Status(now) != StatusActive {
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

// List returns keys in id order. By default only active keys are listed.
func (s *Store) List(ctx context.Context, f Filter) ([]Key, error) {
	q := `SELECT ` + keyColumns + ` FROM api_keys WHERE 1=1`
	var args []any
	if f.Hostname != "" {
		host, err := CanonicalHostname(f.Hostname)
		if err != nil {
			host = f.Hostname
		}
		q += ` AND hostname = ?`
		args = append(args, host)
	}
	q += ` ORDER BY id`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("keystore: list keys: %w", err)
	}
	defer rows.Close()
	now := s.Now()
	keys := []Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("keystore: list keys: %w", err)
		}
		if f.match(k, now) {
			keys = append(keys, k)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keystore: list keys: %w", err)
	}
	return keys, nil
}

// Get returns the key with the given id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (Key, error) {
	return getKey(ctx, s.db, id)
}

// rowQuerier is a *sql.DB or a *sql.Tx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// getKey reads the key with the given id through q, or returns ErrNotFound.
func getKey(ctx context.Context, q rowQuerier, id int64) (Key, error) {
	k, err := scanKey(q.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
	if isNoRows(err) {
		return Key{}, fmt.Errorf("keystore: id %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("keystore: get key %d: %w", id, err)
	}
	return k, nil
}

// Find returns the record of the key whose value is plain, or ErrUnknownKey.
// It does not check status or host; see Authenticate for that.
func (s *Store) Find(ctx context.Context, plain string) (Key, error) {
	hash := HashKey(plain)
	row := s.db.QueryRowContext(ctx, `SELECT key_hash, `+keyColumns+` FROM api_keys WHERE key_hash = ?`, hash[:])
	var stored []byte
	k, err := scanKey(row, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, ErrUnknownKey
	}
	if err != nil {
		return Key{}, fmt.Errorf("keystore: find key: %w", err)
	}
	// The index already matched the hash; compare again in constant time so
	// no code path depends on early-exit byte comparison of secrets.
	if subtle.ConstantTimeCompare(stored, hash[:]) != 1 {
		return Key{}, ErrUnknownKey
	}
	return k, nil
}

// Authenticate checks that plain is an active key and that addr, the
// caller's address, is the host the key is bound to. It returns the key's
// record, or the record (as far as known) together with one of
// ErrUnknownKey, ErrRevoked, ErrExpired or ErrHostMismatch, so that callers
// can log which key failed and why.
func (s *Store) Authenticate(ctx context.Context, plain string, addr netip.Addr) (Key, error) {
	k, err := s.Find(ctx, plain)
	if err != nil {
		return Key{}, err
	}
	return s.check(ctx, k, addr)
}

// check applies the status and host binding of k to a caller at addr.
func (s *Store) check(ctx context.Context, k Key, addr netip.Addr) (Key, error) {
	switch k.Status(s.Now()) {
	case StatusRevoked:
		return k, ErrRevoked
	case StatusExpired:
		return k, ErrExpired
	}
	ok, err := s.resolver.matches(ctx, k.Hostname, addr)
	if err != nil {
		return k, fmt.Errorf("%w: %v", ErrHostMismatch, err)
	}
	if !ok {
		return k, ErrHostMismatch
	}
	return k, nil
}

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
	k, err := scanKey(tx.QueryRowContext(ctx,
		`UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING `+keyColumns, now.UnixNano(), id))
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
	if err := tx.Commit(); err != nil {
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
	rows, err := tx.QueryContext(ctx, `UPDATE api_keys SET revoked_at = ?1
		WHERE hostname = ?2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)
		RETURNING `+keyColumns, now.UnixNano(), host)
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
	for _, k := range keys {
		if err := s.audit(ctx, tx, now, k.ID, ActionRevoke, d.String()); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("keystore: revoke host: %w", err)
	}
	return keys, nil
}

// HashKey returns the SHA-256 the store keeps for a key value. A value that
// parses as a UUID is hashed in its canonical lower-case form, so the same
// key written in upper case or braces still matches.
func HashKey(plain string) [sha256.Size]byte {
	u, err := uuid.Parse(strings.TrimSpace(plain))
	if err != nil {
		return sha256.Sum256([]byte(plain))
	}
	// u.String() without its allocation: this is on every request's path.
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	hex.Encode(b[9:13], u[4:6])
	hex.Encode(b[14:18], u[6:8])
	hex.Encode(b[19:23], u[8:10])
	hex.Encode(b[24:], u[10:])
	b[8], b[13], b[18], b[23] = '-', '-', '-', '-'
	return sha256.Sum256(b[:])
}

const keyColumns = `id, prefix, hostname, description, scopes, measurements, rate, burst,
	created_at, revoked_at, expires_at, replaced_by, last_used_at, last_used_addr, request_count, point_count`

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
		lastAddr                                    sql.NullString
	)
	dest := append(extra, &k.ID, &k.Prefix, &k.Hostname, &k.Description, &scopes, &measurements, &rate, &burst,
		&created, &revoked, &expires, &replaced, &lastUsed, &lastAddr, &k.Requests, &k.Points)
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
	return k, nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

func fromNull(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().UnixNano()
}

func nullFloat(f float64) any {
	if f == 0 {
		return nil
	}
	return f
}

func nullInt(i int64) any {
	if i == 0 {
		return nil
	}
	return i
}

func joinList(l []string) string { return strings.Join(l, ",") }

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// CheckDescription returns ErrInvalidPolicy unless d can describe a key: it
// must be valid UTF-8, at most MaxDescriptionLen bytes, and hold no control
// characters (which could break a table or drive a terminal). keyctl checks
// with it before it creates a database.
func CheckDescription(d string) error {
	switch {
	case len(d) > MaxDescriptionLen:
		return fmt.Errorf("%w: description is %d bytes, longer than %d", ErrInvalidPolicy, len(d), MaxDescriptionLen)
	case !utf8.ValidString(d):
		return fmt.Errorf("%w: description is not valid UTF-8", ErrInvalidPolicy)
	case strings.ContainsFunc(d, unicode.IsControl):
		return fmt.Errorf("%w: description %q contains control characters", ErrInvalidPolicy, d)
	}
	return nil
}

// checkRate rejects a rate the limiter cannot use. NaN would be stored as
// NULL, the server's default, without anyone asking for it.
func checkRate(r float64) error {
	if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return fmt.Errorf("%w: rate %v must be a finite number, not negative", ErrInvalidPolicy, r)
	}
	return nil
}

func checkBurst(b int) error {
	if b < 0 {
		return fmt.Errorf("%w: burst %d must not be negative", ErrInvalidPolicy, b)
	}
	return nil
}

func normalizeScopes(in []string) ([]string, error) {
	if len(in) == 0 {
		return []string{ScopeSubmit}, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		s = strings.ToLower(strings.TrimSpace(s))
		if s != ScopeSubmit && s != ScopeAdmin {
			return nil, fmt.Errorf("%w %q: want %q or %q", ErrInvalidScope, s, ScopeSubmit, ScopeAdmin)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// Ping reports whether the database can be read.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT 1 FROM api_keys LIMIT 1`).Scan(&n); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}
