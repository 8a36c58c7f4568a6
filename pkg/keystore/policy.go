package keystore

import (
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

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
