// Package keyjson is the JSON view of keys and audit entries that keyctl
// prints with -o json and the admin API answers with, so a script can read
// either the same way.
//
// The view of a key has no field for its value: only Generated, which is
// built where a key is made or rotated, carries one, so no other answer can
// show a key by mistake.
package keyjson

import (
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// Key is a key's record, with its status at the time it was converted.
// Times are RFC 3339 in UTC; a time that is not set is null.
type Key struct {
	ID           int64    `json:"id"`
	Name         string   `json:"name"` // "" when the key has none
	Prefix       string   `json:"prefix"`
	Hostname     string   `json:"hostname"`
	Description  string   `json:"description"`
	Scopes       []string `json:"scopes"`
	Measurements []string `json:"measurements"` // empty means any
	Rate         float64  `json:"rate"`         // points per second; 0 means the server's default
	Burst        int      `json:"burst"`        // 0 means the server's default
	Status       string   `json:"status"`
	CreatedAt    string   `json:"created_at"`
	RevokedAt    *string  `json:"revoked_at"`
	ExpiresAt    *string  `json:"expires_at"`
	ReplacedBy   *int64   `json:"replaced_by"`
	LastUsedAt   *string  `json:"last_used_at"`
	LastUsedAddr string   `json:"last_used_addr"`
	Requests     int64    `json:"requests"`
	Points       int64    `json:"points"`
	ManagedBy    string   `json:"managed_by"` // "apply", "admin-api", "import", or "" for a key made one at a time
	Bucket       string   `json:"bucket"`     // "" means the gateway's own
	MaxSeries    int      `json:"max_series"` // series per hour; 0 means the gateway's default
	// Quarantined is true while the gateway refuses the key's writes
	// because InfluxDB kept refusing its points, since QuarantinedAt, for
	// QuarantineReason; an admin releases it.
	Quarantined      bool    `json:"quarantined"`
	QuarantinedAt    *string `json:"quarantined_at"`
	QuarantineReason string  `json:"quarantine_reason"`
}

// Generated is a new key together with its value, which is shown only once.
type Generated struct {
	Key
	Value string `json:"key"`
}

// Rotated is a key made by rotation, with its value, and what became of the
// key it replaces.
type Rotated struct {
	Generated
	OldKeyID        int64  `json:"old_key_id"`
	OldKeyExpiresAt string `json:"old_key_expires_at"`
}

// Put is the answer to a create-or-update of a key by name: what was done
// (create, update, replace or unchanged), the key as it now is, and its
// value when the key is new, shown this once.
type Put struct {
	Action string `json:"action"`
	Key
	Value    string `json:"key,omitempty"`
	Replaces *int64 `json:"replaces,omitempty"` // the key a replace revoked
}

// AuditEntry is one entry of the audit log.
type AuditEntry struct {
	ID     int64  `json:"id"`
	At     string `json:"at"`
	Actor  string `json:"actor"`
	Node   string `json:"node,omitempty"` // the gateway the change was made through; absent for keyctl
	KeyID  *int64 `json:"key_id"`         // null when the change concerned no single key
	Action string `json:"action"`
	Detail string `json:"detail"`
}

// New converts k, with its status at now.
func New(k keystore.Key, now time.Time) Key {
	j := Key{
		ID:               k.ID,
		Name:             k.Name,
		Prefix:           k.Prefix,
		Hostname:         k.Hostname,
		Description:      k.Description,
		Scopes:           nonNil(k.Scopes),
		Measurements:     nonNil(k.Measurements),
		Rate:             k.Rate,
		Burst:            k.Burst,
		Status:           string(k.Status(now)),
		CreatedAt:        Time(k.CreatedAt),
		RevokedAt:        optionalTime(k.RevokedAt),
		ExpiresAt:        optionalTime(k.ExpiresAt),
		LastUsedAt:       optionalTime(k.LastUsedAt),
		LastUsedAddr:     k.LastUsedAddr,
		Requests:         k.Requests,
		Points:           k.Points,
		ManagedBy:        k.ManagedBy,
		Bucket:           k.Bucket,
		MaxSeries:        k.MaxSeries,
		Quarantined:      k.Quarantined(),
		QuarantinedAt:    optionalTime(k.QuarantinedAt),
		QuarantineReason: k.QuarantineReason,
	}
	if k.ReplacedBy != 0 {
		j.ReplacedBy = &k.ReplacedBy
	}
	return j
}

// List converts keys with their status at now. The result is never nil, so
// it encodes as [] when there are no keys.
func List(keys []keystore.Key, now time.Time) []Key {
	out := make([]Key, 0, len(keys))
	for _, k := range keys {
		out = append(out, New(k, now))
	}
	return out
}

// NewRotated converts the result of keystore.Store.Rotate: the new key nk
// with its value plain, and old, the key it replaces.
func NewRotated(nk keystore.Key, plain string, old keystore.Key, now time.Time) Rotated {
	return Rotated{
		Generated:       Generated{Key: New(nk, now), Value: plain},
		OldKeyID:        old.ID,
		OldKeyExpiresAt: Time(old.ExpiresAt),
	}
}

// Audit converts audit entries. The result is never nil.
func Audit(entries []keystore.AuditEntry) []AuditEntry {
	out := make([]AuditEntry, 0, len(entries))
	for _, e := range entries {
		j := AuditEntry{ID: e.ID, At: Time(e.At), Actor: e.Actor, Node: e.Node, Action: e.Action, Detail: e.Detail}
		if e.KeyID != 0 {
			id := e.KeyID
			j.KeyID = &id
		}
		out = append(out, j)
	}
	return out
}

// Time is t in RFC 3339, UTC, or "" when t is not set.
func Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func optionalTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := Time(t)
	return &s
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
