package keystore

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// This file is the one place the rules of a key's policy live. ParsePolicy
// applies them to what a person typed into keyctl or sent to the admin API;
// the Store applies the same rules, through checkUpdate, to every key it
// writes, so a Go caller cannot store what the others would refuse.

// Field names one input of a key's policy. Its value is the input's name in
// the admin API's JSON; PolicyInput.Name says how a caller's users know it.
type Field string

// The inputs of a key's policy, in the order error messages list them.
const (
	FieldExpiresIn       Field = "expires_in"
	FieldExpiresAt       Field = "expires_at"
	FieldNoExpiry        Field = "no_expiry"
	FieldScopes          Field = "scopes"
	FieldMeasurements    Field = "measurements"
	FieldAllMeasurements Field = "all_measurements"
	FieldRate            Field = "rate"
	FieldBurst           Field = "burst"
	FieldDescription     Field = "description"
	FieldName            Field = "name"
	FieldBucket          Field = "bucket"
	FieldMaxSeries       Field = "max_series"
)

// fields lists every Field in the order error messages list them.
var fields = []Field{FieldExpiresIn, FieldExpiresAt, FieldNoExpiry, FieldScopes, FieldMeasurements,
	FieldAllMeasurements, FieldRate, FieldBurst, FieldDescription, FieldName, FieldBucket, FieldMaxSeries}

// PolicyInput is a key's policy as a person asks for it, on keyctl's command
// line or in an admin API request, before any of it is checked. A nil field,
// or a false one, was not given. ParsePolicy turns it into an Update.
type PolicyInput struct {
	// ExpiresIn is how long from now the key works, as a duration such as
	// "720h".
	ExpiresIn *string
	// ExpiresAt is when the key stops working, in RFC 3339 such as
	// "2027-01-01T00:00:00Z".
	ExpiresAt *string
	// NoExpiry asks that the key never expire.
	NoExpiry bool
	// Scopes replace the key's scopes: submit, admin or both, in any case.
	// A list that is given must name at least one.
	Scopes *[]string
	// Measurements limit the key to the measurements named. A list that is
	// given must name at least one; AllMeasurements lifts the limit.
	Measurements *[]string
	// AllMeasurements lets the key write any measurement.
	AllMeasurements bool
	// Rate is the points per second the key may write; 0 means the
	// server's default.
	Rate *float64
	// Burst is the points the key may write at once; 0 means the server's
	// default.
	Burst *int
	// Description says what the key is for.
	Description *string
	// KeyName is the key's unique name (see CheckName); "" removes it.
	KeyName *string
	// Bucket is the InfluxDB bucket the key's points go to (1.x: db or
	// db/rp); "" is the gateway's own.
	Bucket *string
	// MaxSeries is the distinct series the key may write per hour; 0
	// means the gateway's default.
	MaxSeries *int

	// Name says how the caller's users know a field, such as "--expires-in"
	// or `"expires_in"`, for error messages; it returns "" for a field the
	// caller does not offer. Nil names each field by its Field value.
	Name func(Field) string
}

// ParsePolicy checks every input in in and returns the change it asks for:
// expiry times computed from now and in UTC, scopes in lower case without
// repeats, measurement names trimmed. Inputs not given are nil in the
// Update. An error names the input at fault as in.Name does and wraps
// ErrInvalidScope for a scope the gateway does not know, else
// ErrInvalidPolicy.
func ParsePolicy(in PolicyInput, now time.Time) (Update, error) {
	name := in.namer()
	var (
		u   Update
		err error
	)
	if u.ExpiresAt, err = parseExpiry(in, now, name); err != nil {
		return Update{}, err
	}
	if in.Scopes != nil && len(*in.Scopes) == 0 {
		return Update{}, fmt.Errorf("%w: %s must name at least one scope, %s or %s",
			ErrInvalidPolicy, name(FieldScopes), ScopeSubmit, ScopeAdmin)
	}
	u.Scopes = in.Scopes
	if err := exclusive(name, given{FieldMeasurements, in.Measurements != nil},
		given{FieldAllMeasurements, in.AllMeasurements}); err != nil {
		return Update{}, err
	}
	switch {
	case in.AllMeasurements:
		u.Measurements = &[]string{}
	case in.Measurements != nil && len(*in.Measurements) == 0:
		return Update{}, fmt.Errorf("%w: %s must name a measurement, got none", ErrInvalidPolicy, name(FieldMeasurements))
	default:
		u.Measurements = in.Measurements
	}
	u.Rate, u.Burst, u.Description, u.Name = in.Rate, in.Burst, in.Description, in.KeyName
	u.Bucket, u.MaxSeries = in.Bucket, in.MaxSeries
	return checkUpdate(u, name)
}

// ParseUpdate is ParsePolicy for a change to a key that exists: it also
// returns ErrNoChange, listing the inputs the caller offers, when in asks
// for no change at all.
func ParseUpdate(in PolicyInput, now time.Time) (Update, error) {
	u, err := ParsePolicy(in, now)
	if err != nil {
		return Update{}, err
	}
	if u == (Update{}) {
		var offered []string
		name := in.namer()
		for _, f := range fields {
			if n := name(f); n != "" {
				offered = append(offered, n)
			}
		}
		if last := len(offered) - 1; last > 0 {
			return Update{}, fmt.Errorf("%w: give %s or %s", ErrNoChange, strings.Join(offered[:last], ", "), offered[last])
		}
		return Update{}, ErrNoChange
	}
	return u, nil
}

// NewKey returns the key to generate for hostname with the policy u asks
// for, and the store's defaults where u leaves a field nil.
func (u Update) NewKey(hostname string) NewKey {
	nk := NewKey{Hostname: hostname}
	if u.Name != nil {
		nk.Name = *u.Name
	}
	if u.Description != nil {
		nk.Description = *u.Description
	}
	if u.ExpiresAt != nil {
		nk.ExpiresAt = *u.ExpiresAt
	}
	if u.Scopes != nil {
		nk.Scopes = *u.Scopes
	}
	if u.Measurements != nil {
		nk.Measurements = *u.Measurements
	}
	if u.Rate != nil {
		nk.Rate = *u.Rate
	}
	if u.Burst != nil {
		nk.Burst = *u.Burst
	}
	if u.Bucket != nil {
		nk.Bucket = *u.Bucket
	}
	if u.MaxSeries != nil {
		nk.MaxSeries = *u.MaxSeries
	}
	return nk
}

// policy is nk's policy as an Update that sets every field; NewKey turns it
// back.
func (nk NewKey) policy() Update {
	return Update{Description: &nk.Description, ExpiresAt: &nk.ExpiresAt, Scopes: &nk.Scopes,
		Measurements: &nk.Measurements, Rate: &nk.Rate, Burst: &nk.Burst, Name: &nk.Name, Bucket: &nk.Bucket,
		MaxSeries: &nk.MaxSeries}
}

// CheckDescription returns ErrInvalidPolicy unless d can describe a key: it
// must be valid UTF-8, at most MaxDescriptionLen bytes, and hold no control
// characters (which could break a table or drive a terminal).
func CheckDescription(d string) error { return checkDescription(d, string(FieldDescription)) }

// MaxLifetime is the furthest ahead a key's expiry, or the end of a
// rotated key's grace, may be set: longer than any key needs, and well
// within the year 2262 up to which the store's nanoseconds reach, so no
// time overflows into the past.
const MaxLifetime = 100 * 365 * 24 * time.Hour

// latestStorable is the last time the store can hold: the largest number
// of Unix nanoseconds.
var latestStorable = time.Unix(0, math.MaxInt64).UTC()

// CheckGrace returns ErrInvalidPolicy, naming field (such as "--grace"),
// unless grace can be a rotation's grace period: 0 or more, and at most
// MaxLifetime.
func CheckGrace(grace time.Duration, field string) error {
	if grace < 0 || grace > MaxLifetime {
		return fmt.Errorf("%w: %s must be between 0 and %s (100 years), got %s", ErrInvalidPolicy, field, MaxLifetime, grace)
	}
	return nil
}

// ErrAdminLimit means a change made over HTTP would give a key the admin
// scope, or more time with it, beyond AdminLimits. It wraps
// ErrInvalidPolicy. keyctl, run on the host, is not bound by it.
var ErrAdminLimit = fmt.Errorf("%w: beyond the limits of an admin key made over HTTP", ErrInvalidPolicy)

// DefaultAdminKeyMaxTTL is how long an admin key made over HTTP may work
// unless the apiserver is told otherwise: 90 days.
const DefaultAdminKeyMaxTTL = 90 * 24 * time.Hour

// The widest ranges an admin key made over HTTP may be bound to: one
// IPv4 /24 or one IPv6 /64, a network of one site.
const (
	adminMinBits4 = 24
	adminMinBits6 = 64
)

// AdminLimits bound the admin keys the admin API makes, so that one use of
// a stolen admin key cannot yield a key that works from anywhere, forever:
// such a key must expire within MaxTTL and be bound to an address, a DNS
// name, or a range no wider than a /24 (IPv4) or /64 (IPv6). Error
// messages name the admin API's JSON fields.
type AdminLimits struct {
	// MaxTTL is the longest an admin key made or extended over HTTP may
	// work from the time of the request.
	MaxTTL time.Duration
}

// CheckNew returns ErrAdminLimit if nk, a key to make at now, carries the
// admin scope beyond the limits, ErrInvalidHostname for a hostname that is
// not one, and nil otherwise.
func (l AdminLimits) CheckNew(nk NewKey, now time.Time) error {
	if !slices.ContainsFunc(nk.Scopes, isAdminScope) {
		return nil
	}
	return l.check(nk.Hostname, nk.ExpiresAt, now)
}

// CheckUpdate returns ErrAdminLimit if the change u to k, at now, would
// give k the admin scope, or extend the expiry of a key that has it, while
// the key that results is beyond the limits. A change that narrows a key
// (a shorter expiry, fewer scopes, any other field) is never refused, even
// for a key keyctl made beyond the limits.
func (l AdminLimits) CheckUpdate(k Key, u Update, now time.Time) error {
	after := k
	if u.Scopes != nil {
		after.Scopes = *u.Scopes
	}
	if u.ExpiresAt != nil {
		after.ExpiresAt = *u.ExpiresAt
	}
	if !slices.ContainsFunc(after.Scopes, isAdminScope) {
		return nil
	}
	grants := !k.HasScope(ScopeAdmin)
	extends := u.ExpiresAt != nil && !k.ExpiresAt.IsZero() && (after.ExpiresAt.IsZero() || after.ExpiresAt.After(k.ExpiresAt))
	if !grants && !extends {
		return nil
	}
	return l.check(k.Hostname, after.ExpiresAt, now)
}

// CheckChange returns ErrAdminLimit if applying c, one change of a Plan, at
// now would make or widen an admin key beyond the limits, as CheckNew and
// CheckUpdate say; unchanged keys and revocations are never refused.
func (l AdminLimits) CheckChange(c Change, now time.Time) error {
	switch c.Kind {
	case PlanCreate, PlanReplace:
		return l.CheckNew(c.Want, now)
	case PlanUpdate:
		return l.CheckUpdate(c.Key, c.update, now)
	}
	return nil
}

// CheckRotate returns ErrAdminLimit if k carries the admin scope beyond the
// limits at now: rotation gives its new key k's host and expiry, so
// rotating such a key over HTTP would make a fresh key beyond them.
func (l AdminLimits) CheckRotate(k Key, now time.Time) error {
	if !k.HasScope(ScopeAdmin) {
		return nil
	}
	if err := l.check(k.Hostname, k.ExpiresAt, now); err != nil {
		return fmt.Errorf("key %d cannot be rotated over HTTP (set an expiry first, or rotate it with keyctl): %w", k.ID, err)
	}
	return nil
}

// check returns ErrAdminLimit unless an admin key bound to hostname that
// expires at expires (zero for never) is within the limits at now.
func (l AdminLimits) check(hostname string, expires, now time.Time) error {
	host, err := CanonicalHostname(hostname)
	if err != nil {
		return err
	}
	if p, err := netip.ParsePrefix(host); err == nil {
		least := adminMinBits6
		if p.Addr().Is4() {
			least = adminMinBits4
		}
		if p.Bits() < least {
			return fmt.Errorf("%w: \"hostname\" %s is wider than a /%d; bind an admin key to an address, a DNS name or a range of at most a /24 (IPv4) or /64 (IPv6)",
				ErrAdminLimit, host, least)
		}
	}
	latest := now.Add(l.MaxTTL)
	switch {
	case expires.IsZero():
		return fmt.Errorf("%w: an admin key must expire within %s: give \"expires_in\" or \"expires_at\"", ErrAdminLimit, l.MaxTTL)
	case expires.After(latest):
		return fmt.Errorf("%w: an admin key must expire within %s, by %s, not at %s", ErrAdminLimit, l.MaxTTL,
			latest.UTC().Format(time.RFC3339), expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// isAdminScope reports whether s names the admin scope, as a person may
// type it.
func isAdminScope(s string) bool { return strings.EqualFold(strings.TrimSpace(s), ScopeAdmin) }

// namer renders a Field for an error message.
type namer func(Field) string

// fieldName names a field by its Field value, as the Store's errors do.
func fieldName(f Field) string { return string(f) }

func (in PolicyInput) namer() namer {
	if in.Name == nil {
		return fieldName
	}
	return in.Name
}

// given is whether one input was given, for exclusive.
type given struct {
	field Field
	set   bool
}

// exclusive returns ErrInvalidPolicy if more than one of the inputs was
// given.
func exclusive(name namer, inputs ...given) error {
	var names []string
	for _, in := range inputs {
		if in.set {
			names = append(names, name(in.field))
		}
	}
	if len(names) > 1 {
		return fmt.Errorf("%w: %s cannot be used together", ErrInvalidPolicy, strings.Join(names, " and "))
	}
	return nil
}

// parseExpiry returns the expiry in asks for: nil when it gives none, a
// zero time for no expiry.
func parseExpiry(in PolicyInput, now time.Time, name namer) (*time.Time, error) {
	if err := exclusive(name, given{FieldExpiresIn, in.ExpiresIn != nil}, given{FieldExpiresAt, in.ExpiresAt != nil},
		given{FieldNoExpiry, in.NoExpiry}); err != nil {
		return nil, err
	}
	switch {
	case in.ExpiresIn != nil:
		d, err := time.ParseDuration(strings.TrimSpace(*in.ExpiresIn))
		if err != nil {
			return nil, fmt.Errorf("%w: %s %q is not a duration such as 720h", ErrInvalidPolicy, name(FieldExpiresIn), *in.ExpiresIn)
		}
		if d <= 0 {
			return nil, fmt.Errorf("%w: %s must be positive, got %s", ErrInvalidPolicy, name(FieldExpiresIn), d)
		}
		if d > MaxLifetime {
			return nil, fmt.Errorf("%w: %s %s is longer than %s (100 years)", ErrInvalidPolicy, name(FieldExpiresIn), d, MaxLifetime)
		}
		t := now.Add(d).UTC()
		return &t, nil
	case in.ExpiresAt != nil:
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(*in.ExpiresAt))
		if err != nil {
			return nil, fmt.Errorf("%w: %s %q is not an RFC 3339 time such as 2027-01-01T00:00:00Z",
				ErrInvalidPolicy, name(FieldExpiresAt), *in.ExpiresAt)
		}
		if t = t.UTC(); !t.After(now) {
			return nil, fmt.Errorf("%w: %s %s is in the past", ErrInvalidPolicy, name(FieldExpiresAt), t.Format(time.RFC3339))
		}
		if t.After(now.Add(MaxLifetime)) {
			return nil, fmt.Errorf("%w: %s %s is more than 100 years ahead", ErrInvalidPolicy, name(FieldExpiresAt), t.Format(time.RFC3339))
		}
		return &t, nil
	case in.NoExpiry:
		return &time.Time{}, nil
	}
	return nil, nil
}

// checkUpdate checks the fields u sets and returns them as the store keeps
// them, in new variables: scopes normalized (an empty list means the
// default, submit), measurement names trimmed. Errors name fields as name
// does.
func checkUpdate(u Update, name namer) (Update, error) {
	var out Update
	if u.ExpiresAt != nil {
		if u.ExpiresAt.After(latestStorable) {
			return Update{}, fmt.Errorf("%w: %s %s is later than the store can hold (%s)", ErrInvalidPolicy,
				name(FieldExpiresAt), u.ExpiresAt.UTC().Format(time.RFC3339), latestStorable.Format(time.RFC3339))
		}
		out.ExpiresAt = ptr(*u.ExpiresAt)
	}
	if u.Scopes != nil {
		scopes, err := normalizeScopes(*u.Scopes, name(FieldScopes))
		if err != nil {
			return Update{}, err
		}
		out.Scopes = &scopes
	}
	if u.Measurements != nil {
		ms, err := normalizeMeasurements(*u.Measurements, name(FieldMeasurements))
		if err != nil {
			return Update{}, err
		}
		out.Measurements = &ms
	}
	if u.Rate != nil {
		if err := checkRate(*u.Rate, name(FieldRate)); err != nil {
			return Update{}, err
		}
		out.Rate = ptr(*u.Rate)
	}
	if u.Burst != nil {
		if err := checkBurst(*u.Burst, name(FieldBurst)); err != nil {
			return Update{}, err
		}
		out.Burst = ptr(*u.Burst)
	}
	if u.Description != nil {
		if err := checkDescription(*u.Description, name(FieldDescription)); err != nil {
			return Update{}, err
		}
		out.Description = ptr(*u.Description)
	}
	if u.Name != nil {
		if *u.Name != "" {
			if err := CheckName(*u.Name, name(FieldName)); err != nil {
				return Update{}, err
			}
		}
		out.Name = ptr(*u.Name)
	}
	if u.Bucket != nil {
		if err := CheckBucket(*u.Bucket, name(FieldBucket)); err != nil {
			return Update{}, err
		}
		out.Bucket = ptr(*u.Bucket)
	}
	if u.MaxSeries != nil {
		if err := checkMaxSeries(*u.MaxSeries, name(FieldMaxSeries)); err != nil {
			return Update{}, err
		}
		out.MaxSeries = ptr(*u.MaxSeries)
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

// normalizeScopes returns the scopes in lower case, trimmed, without
// repeats, or [submit] for none. A scope the gateway does not know is
// ErrInvalidScope.
func normalizeScopes(in []string, field string) ([]string, error) {
	if len(in) == 0 {
		return []string{ScopeSubmit}, nil
	}
	var out []string
	for _, s := range in {
		s = strings.ToLower(strings.TrimSpace(s))
		if s != ScopeSubmit && s != ScopeAdmin {
			return nil, fmt.Errorf("%w %q in %s: want %s or %s", ErrInvalidScope, s, field, ScopeSubmit, ScopeAdmin)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// normalizeMeasurements returns the measurement names trimmed. The list is
// stored comma-separated, so a name must be non-empty and hold no comma.
func normalizeMeasurements(in []string, field string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, m := range in {
		switch m = strings.TrimSpace(m); {
		case m == "":
			return nil, fmt.Errorf("%w: %s must name a measurement, got an empty one", ErrInvalidPolicy, field)
		case strings.Contains(m, ","):
			return nil, fmt.Errorf("%w: %s %q must name one measurement, without a comma", ErrInvalidPolicy, field, m)
		}
		out = append(out, m)
	}
	return out, nil
}

// checkRate rejects a rate the limiter cannot use. NaN would be stored as
// NULL, the server's default, without anyone asking for it.
func checkRate(r float64, field string) error {
	if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return fmt.Errorf("%w: %s must be a number of points per second, 0 or more, got %v", ErrInvalidPolicy, field, r)
	}
	return nil
}

func checkBurst(b int, field string) error {
	if b < 0 {
		return fmt.Errorf("%w: %s must be 0 or more, got %d", ErrInvalidPolicy, field, b)
	}
	return nil
}

func checkDescription(d, field string) error {
	switch {
	case len(d) > MaxDescriptionLen:
		return fmt.Errorf("%w: %s is %d bytes, longer than %d", ErrInvalidPolicy, field, len(d), MaxDescriptionLen)
	case !utf8.ValidString(d):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidPolicy, field)
	case strings.ContainsFunc(d, unicode.IsControl):
		return fmt.Errorf("%w: %s %q contains control characters", ErrInvalidPolicy, field, d)
	}
	return nil
}

// MaxBucketLen is the longest bucket name a key may carry, in bytes: what
// the spool's record header has room for.
const MaxBucketLen = 255

// MaxSeriesLimit is the largest series budget a key may have of its own:
// the gateway keeps a filter of about 1.2 bytes per series of a key's
// budget, 1.2 MB at this limit.
const MaxSeriesLimit = 1_000_000

// CheckBucket returns ErrInvalidPolicy, naming field (such as "--bucket"),
// unless b can be a key's bucket: "" (the gateway's own), or a name of at
// most MaxBucketLen bytes of printable UTF-8 without spaces at either end,
// not starting with "_" (InfluxDB's own databases and buckets, such as
// _internal, start so), and with at most one "/" between a 1.x database
// and its retention policy.
func CheckBucket(b, field string) error {
	if b == "" {
		return nil
	}
	switch {
	case len(b) > MaxBucketLen:
		return fmt.Errorf("%w: %s is %d bytes, longer than %d", ErrInvalidPolicy, field, len(b), MaxBucketLen)
	case !utf8.ValidString(b) || strings.ContainsFunc(b, unicode.IsControl):
		return fmt.Errorf("%w: %s %q must be printable UTF-8", ErrInvalidPolicy, field, b)
	case strings.TrimSpace(b) != b:
		return fmt.Errorf("%w: %s %q starts or ends with a space", ErrInvalidPolicy, field, b)
	case strings.HasPrefix(b, "_"):
		return fmt.Errorf("%w: %s %q starts with \"_\", which InfluxDB keeps for its own databases", ErrInvalidPolicy, field, b)
	}
	db, rp, hasRP := strings.Cut(b, "/")
	if db == "" || (hasRP && (rp == "" || strings.Contains(rp, "/"))) {
		return fmt.Errorf("%w: %s %q must be a bucket, or a database and retention policy as db/rp", ErrInvalidPolicy, field, b)
	}
	return nil
}

func checkMaxSeries(n int, field string) error {
	if n < 0 || n > MaxSeriesLimit {
		return fmt.Errorf("%w: %s must be between 0 (the gateway's default) and %d series per hour, got %d",
			ErrInvalidPolicy, field, MaxSeriesLimit, n)
	}
	return nil
}
