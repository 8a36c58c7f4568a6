package main

import (
	"math"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// policyFlags hold the raw values of the flags that set a key's policy,
// which generate and update share. resolve turns them into a change.
type policyFlags struct {
	expiresIn       time.Duration
	expiresAt       string
	noExpiry        bool
	scopes          []string
	measurements    []string
	allMeasurements bool
	rate            float64
	burst           int
	description     string
}

// addPolicyFlags adds the policy flags to cmd. update also gets the flags
// that undo a policy (--no-expiry, --all-measurements), and help that says
// lists replace the key's lists.
func addPolicyFlags(cmd *cobra.Command, p *policyFlags, update bool) {
	fl := cmd.Flags()
	fl.DurationVar(&p.expiresIn, "expires-in", 0, "the key stops working after `duration`, such as 720h")
	fl.StringVar(&p.expiresAt, "expires-at", "", "the key stops working at `time`, in RFC 3339 such as 2027-01-01T00:00:00Z")
	if update {
		fl.BoolVar(&p.noExpiry, "no-expiry", false, "the key never expires")
		fl.StringSliceVar(&p.scopes, "scope", nil, "`scope` the key carries, submit or admin (repeatable; replaces the key's scopes)")
		fl.StringSliceVar(&p.measurements, "measurement", nil, "limit the key to `measurement` (repeatable; replaces the key's list)")
		fl.BoolVar(&p.allMeasurements, "all-measurements", false, "let the key write any measurement")
		fl.StringVar(&p.description, "description", "", "what the key is for")
	} else {
		fl.StringSliceVar(&p.scopes, "scope", nil, "`scope` the key carries, submit or admin (repeatable; default submit)")
		fl.StringSliceVar(&p.measurements, "measurement", nil, "limit the key to `measurement` (repeatable; default any)")
		fl.StringVar(&p.description, "description", "", "what the key is for")
	}
	fl.Float64Var(&p.rate, "rate", 0, "`points` per second the key may write (0: the server's default)")
	fl.IntVar(&p.burst, "burst", 0, "`points` the key may write at once (0: the server's default)")
}

// resolve checks the policy flags given on cmd and returns the change they
// ask for, with expiry times computed from now. Flags not given are nil.
// Every mistake is a usage error.
func (p *policyFlags) resolve(cmd *cobra.Command, now time.Time) (keystore.Update, error) {
	var u keystore.Update
	fl := cmd.Flags()
	if err := exclusive(cmd, "expires-in", "expires-at", "no-expiry"); err != nil {
		return u, err
	}
	switch {
	case fl.Changed("expires-in"):
		if p.expiresIn <= 0 {
			return u, usageErrorf("--expires-in must be positive, got %s", p.expiresIn)
		}
		t := now.Add(p.expiresIn).UTC()
		u.ExpiresAt = &t
	case fl.Changed("expires-at"):
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(p.expiresAt))
		if err != nil {
			return u, usageErrorf("--expires-at %q is not an RFC 3339 time such as 2027-01-01T00:00:00Z", p.expiresAt)
		}
		if !t.After(now) {
			return u, usageErrorf("--expires-at %s is in the past", formatTime(t))
		}
		t = t.UTC()
		u.ExpiresAt = &t
	case fl.Changed("no-expiry") && p.noExpiry:
		u.ExpiresAt = &time.Time{}
	}

	if fl.Changed("scope") {
		var scopes []string
		for _, s := range p.scopes {
			s = strings.ToLower(strings.TrimSpace(s))
			if s != keystore.ScopeSubmit && s != keystore.ScopeAdmin {
				return u, usageErrorf("--scope %q: want %s or %s", s, keystore.ScopeSubmit, keystore.ScopeAdmin)
			}
			scopes = append(scopes, s)
		}
		if len(scopes) == 0 {
			return u, usageErrorf("--scope must not be empty")
		}
		u.Scopes = &scopes
	}

	if err := exclusive(cmd, "measurement", "all-measurements"); err != nil {
		return u, err
	}
	if fl.Changed("measurement") {
		var ms []string
		for _, m := range p.measurements {
			if m = strings.TrimSpace(m); m == "" {
				return u, usageErrorf("--measurement must name a measurement, got an empty one")
			}
			ms = append(ms, m)
		}
		if len(ms) == 0 {
			return u, usageErrorf("--measurement must name a measurement, got an empty one")
		}
		u.Measurements = &ms
	}
	if fl.Changed("all-measurements") && p.allMeasurements {
		u.Measurements = &[]string{}
	}

	if fl.Changed("rate") {
		if p.rate < 0 || math.IsNaN(p.rate) || math.IsInf(p.rate, 0) {
			return u, usageErrorf("--rate must be a number of points per second, 0 or more, got %v", p.rate)
		}
		rate := p.rate
		u.Rate = &rate
	}
	if fl.Changed("burst") {
		if p.burst < 0 {
			return u, usageErrorf("--burst must be 0 or more, got %d", p.burst)
		}
		burst := p.burst
		u.Burst = &burst
	}
	if fl.Changed("description") {
		desc := p.description
		u.Description = &desc
	}
	return u, nil
}

// exclusive returns a usage error if more than one of the named flags was
// given on cmd.
func exclusive(cmd *cobra.Command, names ...string) error {
	var given []string
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			given = append(given, "--"+n)
		}
	}
	if len(given) > 1 {
		return usageErrorf("%s cannot be used together", strings.Join(given, " and "))
	}
	return nil
}
