package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// policyFlags hold the raw values of the flags that set a key's policy,
// which generate and update share. input hands them, as typed, to
// keystore.ParsePolicy, which checks them.
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
	name            string
	bucket          string
	maxSeries       int
}

// policyFlagNames are the flags of the inputs of a key's policy.
var policyFlagNames = map[keystore.Field]string{
	keystore.FieldExpiresIn:       "expires-in",
	keystore.FieldExpiresAt:       "expires-at",
	keystore.FieldNoExpiry:        "no-expiry",
	keystore.FieldScopes:          "scope",
	keystore.FieldMeasurements:    "measurement",
	keystore.FieldAllMeasurements: "all-measurements",
	keystore.FieldRate:            "rate",
	keystore.FieldBurst:           "burst",
	keystore.FieldDescription:     "description",
	keystore.FieldName:            "name",
	keystore.FieldBucket:          "bucket",
	keystore.FieldMaxSeries:       "max-series",
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
	if update {
		fl.StringVar(&p.name, "name", "", "the key's unique `name`, such as web-1-telegraf; \"\" removes it")
	} else {
		fl.StringVar(&p.name, "name", "", "a unique `name` for the key, such as web-1-telegraf, for show, update, rotate, revoke and apply")
	}
	fl.Float64Var(&p.rate, "rate", 0, "`points` per second the key may write (0: the server's default)")
	fl.IntVar(&p.burst, "burst", 0, "`points` the key may write at once (0: the server's default)")
	fl.StringVar(&p.bucket, "bucket", "", "InfluxDB `bucket` (1.x: db or db/rp) the key's points go to, apart from other keys' (\"\": the gateway's --influx-bucket)")
	fl.IntVar(&p.maxSeries, "max-series", 0, "distinct `series` the key may write per hour, up to 1000000 (0: the server's --max-series-per-key)")
}

// input returns the policy flags given on cmd as keystore.ParsePolicy
// takes them, which names each input by cmd's flag for it.
func (p *policyFlags) input(cmd *cobra.Command) keystore.PolicyInput {
	fl := cmd.Flags()
	given := func(f keystore.Field) bool { return fl.Changed(policyFlagNames[f]) }
	in := keystore.PolicyInput{
		NoExpiry:        p.noExpiry,
		AllMeasurements: p.allMeasurements,
		Name: func(f keystore.Field) string {
			if name := policyFlagNames[f]; fl.Lookup(name) != nil {
				return "--" + name
			}
			return ""
		},
	}
	if given(keystore.FieldExpiresIn) {
		in.ExpiresIn = ptr(p.expiresIn.String())
	}
	if given(keystore.FieldExpiresAt) {
		in.ExpiresAt = &p.expiresAt
	}
	if given(keystore.FieldScopes) {
		in.Scopes = &p.scopes
	}
	if given(keystore.FieldMeasurements) {
		in.Measurements = &p.measurements
	}
	if given(keystore.FieldRate) {
		in.Rate = &p.rate
	}
	if given(keystore.FieldBurst) {
		in.Burst = &p.burst
	}
	if given(keystore.FieldDescription) {
		in.Description = &p.description
	}
	if given(keystore.FieldName) {
		in.KeyName = &p.name
	}
	if given(keystore.FieldBucket) {
		in.Bucket = &p.bucket
	}
	if given(keystore.FieldMaxSeries) {
		in.MaxSeries = &p.maxSeries
	}
	return in
}

func ptr[T any](v T) *T { return &v }
