package keystore

import "time"

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
	Name         string // unique among the keys not revoked; "" for none
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
	// ManagedBy says what made the key and manages it declaratively,
	// ManagedByApply or ManagedByHTTP, or is "" for a key made one at a
	// time. keyctl apply --prune revokes only the keys it made.
	ManagedBy string

	// Bucket is the InfluxDB bucket (1.x: db or db/rp) the key's points go
	// to, apart from other keys' shards; "" means the gateway's own.
	Bucket string
	// MaxSeries caps the distinct series the key may write per hour; 0
	// means the gateway's --max-series-per-key.
	MaxSeries int
	// QuarantinedAt is when the gateway stopped taking the key's points
	// because InfluxDB kept refusing them; zero while it is not
	// quarantined. QuarantineReason says why.
	QuarantinedAt    time.Time
	QuarantineReason string
}

// The makers of keys that manage them declaratively, as Key.ManagedBy
// records them.
const (
	// ManagedByApply marks the keys keyctl apply made from a file.
	ManagedByApply = "apply"
	// ManagedByHTTP marks the keys the admin API's PUT by name made.
	ManagedByHTTP = "admin-api"
	// ManagedByImport marks the keys keyctl import brought from a file of
	// hashes.
	ManagedByImport = "import"
)

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

// Quarantined reports whether the key is quarantined: its writes are
// refused until an admin releases it (Store.Release).
func (k Key) Quarantined() bool { return !k.QuarantinedAt.IsZero() }

// HasScope reports whether the key carries scope s.
func (k Key) HasScope(s string) bool {
	for _, have := range k.Scopes {
		if have == s {
			return true
		}
	}
	return false
}

// NewKey describes a key to generate.
type NewKey struct {
	Name         string // "" for none; see CheckName
	Hostname     string
	Description  string
	Scopes       []string // defaults to [submit]
	Measurements []string
	Rate         float64
	Burst        int
	ExpiresAt    time.Time // zero for no expiry
	Bucket       string    // "" for the gateway's bucket
	MaxSeries    int       // 0 for the gateway's --max-series-per-key
}

// Update describes changes to a key's policy. Nil fields are left alone.
type Update struct {
	Description  *string
	ExpiresAt    *time.Time // a zero time removes the expiry
	Scopes       *[]string
	Measurements *[]string // an empty list allows every measurement
	Rate         *float64  // 0 means the server's default
	Burst        *int      // 0 means the server's default
	Name         *string   // "" removes the name; see CheckName
	Bucket       *string   // "" means the gateway's bucket
	MaxSeries    *int      // 0 means the gateway's --max-series-per-key
}
